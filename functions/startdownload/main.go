// Command startdownload is the startdownload Lambda function: it creates an SDS download job for a data source.
package main

import "github.com/sdsops/sdsops/internal/task"

func main() {
	task.Start("startdownload", func(r *task.Runner) task.Func { return r.StartDownload }, false)
}
