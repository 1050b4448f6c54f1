// Package localaws runs the AWS side of sdsops on one machine: moto_server (S3, Secrets
// Manager, Step Functions) and a local Lambda invoke endpoint that runs the real bootstrap
// executables through the Lambda Runtime API. Tests and `make run` use it; nothing here is a
// hand-written fake of an AWS API.
//
// # Pieces
//
//   - StartMoto starts moto_server through moto_launcher.py (embedded), which patches
//     defects of moto 5.2.x, and switches Step Functions execution on.
//   - LambdaEndpoint answers POST /2015-03-31/functions/{name}/invocations (synchronous
//     invocations only) with registered functions and passes every other request to moto.
//     Kill ends a function's processes as a crash would, for fault tests.
//   - StartStack starts both, wired together: moto gets MOTO_PORT = the endpoint's port, so
//     Step Functions' Lambda tasks and aws-sdk integrations go to the endpoint.
//   - NewAWSConfig and NewS3Client configure SDK clients for either URL.
//
// # moto Step Functions, as observed with moto 5.2.1
//
// Resource forms. "arn:aws:states:::lambda:invoke" with Parameters
// {"FunctionName": ARN, "Payload": {...}} yields
// {"StatusCode": 200, "ExecutedVersion": "$LATEST", "Payload": <result>} (AWS adds
// SdkHttpMetadata and SdkResponseMetadata), so definitions need "OutputPath": "$.Payload"
// or a ResultSelector to get the result. A plain function ARN as Resource sends
// Parameters (or the state input) as the payload and yields the result itself, the same on
// AWS and moto.
//
// Errors. Both forms report a handler error with the handler's errorType as Error and the
// error body ({"errorMessage":...,"errorType":...}) as Cause, so Retry and Catch match the
// errorType directly, as do States.TaskFailed and States.ALL; history events are TaskFailed
// (lambda:invoke) or LambdaFunctionFailed (plain ARN). A crashed runtime is
// Runtime.ExitError, a timeout Sandbox.Timedout.
//
// Output. Execution output and history payloads are JSON written by Python
// (", " and ": " separators, key order not guaranteed): parse them, never compare strings.
//
// Names. FunctionName may be a name or an ARN; the endpoint keys functions by name.
// Lambda calls go to http://localhost:MOTO_PORT; the endpoint listens on 127.0.0.1.
//
// # Launcher patches (see moto_launcher.py)
//
//   - sfn-deepcopy: once any execution had run, every later StartExecution in that
//     account and region, on any state machine, failed with HTTP 500 ("cannot pickle
//     '_thread.RLock'"); fixed by leaving executions and the backend out of the state
//     machine snapshot.
//   - sfn-execution-name: executions started without a name were named "None"; they get
//     a UUID.
//   - sfn-wait-scale: SDSOPS_SFN_WAIT_SCALE (MotoOptions.WaitScale, SkipWaits) scales Wait
//     states (Seconds, SecondsPath, Timestamp, TimestampPath) and Retry intervals (after
//     BackoffRate, MaxDelaySeconds and jitter). Task TimeoutSeconds and heartbeats keep
//     real time. The same scale shortens the 0.5 s poll of nested executions (at least
//     50 ms).
//   - sfn-nested: nested executions (states:startExecution.sync:2) failed with
//     States.Runtime 'StateMachineArn'; requests now reach the API under its member
//     names and responses come back in PascalCase with epoch-millisecond dates, as on
//     AWS: {ExecutionArn, Status, Output, ...}, and a failed child gives States.TaskFailed
//     with its DescribeExecution as JSON in the cause.
//   - s3-multipart-lock: CreateMultipartUpload ignored the Object Lock headers, so an
//     object stored by a multipart upload was not locked; they are now kept with the
//     upload and put on the object its completion stores, as S3 does.
//
// The Step Functions patches apply when moto first loads its Step Functions code (the
// first Step Functions request, about 2 s), the S3 one with moto's S3 code; moto's output
// says which were applied.
package localaws
