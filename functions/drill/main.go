// Command drill is the restore drills' function: it plans a drill run, checks there is room for a drill, finds its scratch data source and records its outcome.
package main

import "github.com/sdsops/sdsops/internal/task"

func main() {
	task.Start("drill", (*task.Service).Drill, task.NeedKeys, task.NeedCatalog)
}
