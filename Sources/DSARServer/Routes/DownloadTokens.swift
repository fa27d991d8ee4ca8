// DownloadTokens: the download part of issue 17 goes here (not implemented yet).
//
// `GET /dsar/{jobId}/download` (scope `dsar:download`, see Routes.download) answers `302` to
// `/files/{token}`. The token is an HMAC under a spool key over the job id, the file
// (bundle.zip.age, manifest, manifest signature) and the expiry, now + `serve.download_ttl`
// (ServeConfig.downloadTTL, default 3600 s). The file route checks it (403 when expired or
// altered) and streams the file with Content-Length, ETag and Range, reading on BlockingIO.
// Register both routes in Routes.register(on:) and add `/files/:token` to Routes.methods.
