// Command report ends a nightly run: it applies the retention policy, writes the night's report to S3 and publishes its summary.
package main

import "github.com/sdsops/sdsops/internal/task"

func main() {
	task.Start("report", (*task.Service).Night, task.NeedCatalog, task.NeedObjects, task.NeedRetention, task.NeedNotifier)
}
