// Command copytos3 is the copytos3 Lambda function: it streams a completed download job's export into the S3 archive.
package main

import "github.com/sdsops/sdsops/internal/task"

func main() {
	task.Start("copytos3", (*task.Service).CopyToS3, task.NeedKeys, task.NeedArchive)
}
