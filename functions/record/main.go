// Command record writes the outcome of a backup, delete or visibility change into the catalog, and tells the nightly run when the job limits stopped it.
package main

import "github.com/sdsops/sdsops/internal/task"

func main() {
	task.Start("record", (*task.Service).Record, task.NeedCatalog, task.NeedObjects)
}
