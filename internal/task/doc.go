// Package task holds the logic of the Lambda functions: start a download,
// check a job's status, copy an export to S3, convert an archive to
// GeoJSON, delete a data source, and make one public or private.
//
// Layout: one file per operation, each a method of Service (service.go,
// which holds what operations share: config, keys, archive, converter, SDS
// client). startdownload.go, copytos3.go, convert.go, delete.go and
// setpublic.go hold an operation and, where its job is polled, its status
// check; checkstatus.go dispatches CheckStatus to those checks by the
// state's operation. config.go reads the environment and names every
// default; lambda.go adapts an operation to the Lambda runtime, so a
// function's main package is one line: task.Start("name",
// (*task.Service).Operation). A new operation adds its own file and main
// package the same way.
//
// Events and results are JSON objects with camelCase fields. Entry events
// (startdownload, convert, delete, setpublic) reject unknown fields, so a
// typo in a schedule or API call is reported instead of silently ignored;
// the chained events (checkstatus, copytos3) pass every field they do not
// own through unchanged, so a state machine can carry its own context
// along.
package task
