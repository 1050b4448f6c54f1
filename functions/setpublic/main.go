// Command setpublic is the setpublic Lambda function: it makes a data source public or private.
package main

import "github.com/sdsops/sdsops/internal/task"

func main() {
	task.Start("setpublic", (*task.Service).SetPublic, task.NeedKeys)
}
