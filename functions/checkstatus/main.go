// Command checkstatus is the checkstatus Lambda function: it reports the status of a download, delete or set-public job.
package main

import "github.com/sdsops/sdsops/internal/task"

func main() {
	task.Start("checkstatus", (*task.Service).CheckStatus, task.NeedKeys)
}
