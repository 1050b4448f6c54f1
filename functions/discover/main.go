// Command discover is the nightly run's first step: it lists the account's data sources, plans the night within the SDS job limits and returns the data sources to back up.
package main

import "github.com/sdsops/sdsops/internal/task"

func main() {
	task.Start("discover", (*task.Service).Discover, task.NeedKeys, task.NeedCatalog)
}
