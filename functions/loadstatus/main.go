// Command loadstatus is the loadstatus Lambda function: it reads the status of a load, publish or rollback job and keeps an aborted load's failed entities in S3.
package main

import "github.com/sdsops/sdsops/internal/task"

func main() {
	task.Start("loadstatus", (*task.Service).LoadStatus, task.NeedKeys, task.NeedObjects)
}
