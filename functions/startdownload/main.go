// Command startdownload is the startdownload Lambda function: it creates an SDS download job for a data source.
package main

import "github.com/sdsops/sdsops/internal/task"

func main() {
	task.Start("startdownload", (*task.Service).StartDownload, task.NeedKeys)
}
