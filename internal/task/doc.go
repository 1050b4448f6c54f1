// Package task holds the logic of the five Lambda functions: start a
// download, check a job's status, copy an export to S3, delete a data
// source, and make one public or private. Each function's main package only
// wires a Runner to the Lambda runtime.
//
// Events and results are JSON objects with camelCase fields. Entry events
// (startdownload, delete, setpublic) reject unknown fields, so a typo in a
// schedule or API call is reported instead of silently ignored; the chained
// events (checkstatus, copytos3) pass every field they do not own through
// unchanged, so a state machine can carry its own context along.
package task
