// Command delete is the delete Lambda function: it deletes a data source (or its staged version) after a confirmation check.
package main

import "github.com/sdsops/sdsops/internal/task"

func main() {
	task.Start("delete", (*task.Service).Delete, task.NeedKeys)
}
