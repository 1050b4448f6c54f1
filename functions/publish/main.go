// Command publish is the publish Lambda function: it publishes a data source's staged version.
package main

import "github.com/sdsops/sdsops/internal/task"

func main() {
	task.Start("publish", (*task.Service).Publish, task.NeedKeys)
}
