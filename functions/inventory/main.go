// Command inventory lists the data sources with their catalog state and staleness, and one data source's archives.
package main

import "github.com/sdsops/sdsops/internal/task"

func main() {
	task.Start("inventory", (*task.Service).Inventory, task.NeedCatalog, task.NeedObjects)
}
