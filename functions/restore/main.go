// Command restore is the restore Lambda function: it restores an archive into SDS: prepares the restore, or starts its load.
package main

import "github.com/sdsops/sdsops/internal/task"

func main() {
	task.Start("restore", (*task.Service).Restore, task.NeedKeys, task.NeedObjects, task.NeedCatalog)
}
