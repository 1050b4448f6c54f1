// Command rollback is the rollback Lambda function: it rolls a data source back to one of its prior versions.
package main

import "github.com/sdsops/sdsops/internal/task"

func main() {
	task.Start("rollback", (*task.Service).Rollback, task.NeedKeys)
}
