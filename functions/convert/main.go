// Command convert is the convert Lambda function: it turns an archived export in S3 into GeoJSON and a schema document beside it, recorded in the archive's manifest.
package main

import "github.com/sdsops/sdsops/internal/task"

func main() {
	task.Start("convert", (*task.Service).Convert, task.NeedConverter)
}
