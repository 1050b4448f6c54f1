// Command rollback is the rollback Lambda function: it rolls a data source back to one of its prior versions.
package main

import "github.com/sdsops/sdsops/internal/task"

func main() {
	task.StartRestorer("rollback", func(r *task.Restorer) task.Func { return r.Rollback })
}
