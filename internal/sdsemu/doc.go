// Package sdsemu emulates the parts of the Bing Maps Spatial Data Services (SDS) Data Source
// Management API that sdsops uses: download jobs and their data, delete, set public/private,
// data source information and the job list. Responses follow the documented JSON and XML
// envelopes field for field (key names, casing and order, __type strings, element order and
// namespaces) so that a client tested here behaves the same against the real service.
//
// Routes, all under /REST/v1 (fixed segments and parameter names case-insensitive):
//
//	GET    /Dataflows/DataSourceDownload/{accessId}/{name}[?jobId=]   create download job (201)
//	GET    /dataflows/DataSourceDownload/{accessId}/{name}/{jobId}    download job status (200)
//	GET    /dataflows/DataSourceDownload/{name}                       newest download job (docs' short form)
//	GET    .../{jobId}/output/succeeded                               downloaded data (XML, streamed)
//	GET    .../{jobId}/output/failed                                  error log of an aborted job (text)
//	DELETE /data/{accessId}/{name}[?isStaging=]                       delete (202, empty)
//	GET    /data/{accessId}/{name}/$updateDataSource?setPublic=       set public/private (201)
//	GET    /data, /data/{accessId}/{name}[?showAllVersions=]          data source information (200)
//	GET    /Dataflows/ListJobs                                        job list (200)
//	POST   /Dataflows/LoadDataSource?dataSourceName=&loadOperation=   load (201; load.go)
//	GET    /dataflows/LoadDataSource/{jobId}[/output/failed]          load status, error log
//	GET    /data/{accessId}/{name}/$commit, /data/jobs/{id}/$getstatus publish staged (202), status
//	GET    /Dataflows/DataSourceRollback/{versionJobId}/{name}        rollback (201)
//	GET    /dataflows/DataSourceRollback/{jobId}                      rollback status
//
// The decisions taken for loads (access IDs, versions, checks, failed output) are in README.md.
//
// Decisions where the documentation is silent or contradicts itself:
//   - Status links carry the access ID and job ID ({base}/REST/v1/dataflows/DataSourceDownload/
//     {accessId}/{name}/{jobId}); the docs' short form is served too. Links use the emulator's
//     own base URL.
//   - Success codes: create download and set public 201 (the bodies say 201, the lists 202),
//     delete 202, status, data, information and job list 200 (the information page lists 201,
//     but nothing is created).
//   - The job limits have no documented status code: 429 with Retry-After (seconds).
//   - A wrong method on a known resource is 405 with Allow; an unknown route is 404.
//   - Errors use the REST envelope with errorDetails, in the format asked for by output/o (JSON
//     by default); on the information routes $format=json gives JSON, otherwise XML. In XML,
//     ErrorDetails comes before TraceId and ResourceSets is empty.
//   - Key checks: missing key 401 NoCredentials; a key of no account 401 InvalidCredentials
//     before any lookup; then unknown data source or job 404; then a key that is not the master
//     key (or, for information, not a key of the owning account) 401 InvalidCredentials.
//   - Output links are written {"name","role","url"} in JSON (the job list's spelling); the XML
//     DataflowJob follows the status example (Id, self Link, Status, output Link, dates,
//     counts) with ErrorMessage last.
//   - Delete and set-public jobs complete on their own (JobDuration, CompleteAfterPolls) and are
//     seen in the job list; a deleted data source then answers 404. In the job list they are
//     Pending, Completed or Aborted; only the set-public response says Created.
//   - showAllVersions accepts true/false, 1/0 and any positive number (the docs' example sends 3);
//     in JSON, versions are listed under DataSources with IsStagingDataSource, IsActive and JobId.
//   - A staged version is never public.
//   - The download uses the real XML Schema namespace (http://www.w3.org/2001/XMLSchema; the
//     docs print https) and supports no Range requests.
package sdsemu
