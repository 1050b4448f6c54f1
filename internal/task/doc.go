// Package task holds the logic of the Lambda functions: start a download,
// check a job's status, copy an export to S3, convert an archive to
// GeoJSON, delete a data source, make one public or private, restore an
// archive into SDS, publish a staged version, roll back to a prior version,
// follow those last three jobs, and run the account-wide nightly backup:
// discover the data sources and plan the night, record each outcome in the
// catalog, and list the inventory.
//
// Layout: one file per operation, each a method of Service (service.go,
// which holds what operations share: the configuration and Deps, the
// dependencies given once at construction). startdownload.go, copytos3.go, convert.go, delete.go and
// setpublic.go hold an operation and, where its job is polled, its status
// check; checkstatus.go dispatches CheckStatus to those checks by the
// state's operation. restore.go (prepare a restore, or start its load),
// publish.go and rollback.go start SDS jobs that loadstatus.go follows:
// their JobState has no accessId until the load completes, is decoded
// strictly, and an aborted load's failed entities are kept in S3, so
// LoadStatus is a function of its own rather than a case of CheckStatus.
// nightly.go (Discover), record.go (Record) and inventory.go (Inventory)
// use the catalog in the archive bucket. config.go reads the environment,
// names every default and builds the dependencies a function names
// (NeedKeys, NeedArchive, ...); lambda.go adapts an operation to the
// Lambda runtime, so a function's main package is one line:
// task.Start("name", (*task.Service).Operation, task.NeedKeys, ...). A new
// operation adds its own file and main package the same way.
//
// Events and results are JSON objects with camelCase fields. Entry events
// (startdownload, convert, delete, setpublic, restore, publish, rollback,
// discover) and the JobState read by loadstatus reject unknown fields, so a
// typo in a schedule or API call is reported instead of silently ignored;
// record and inventory read only what they need; the chained events
// (checkstatus, copytos3) pass every field they do not own through
// unchanged, so a state machine can carry its own context along.
package task
