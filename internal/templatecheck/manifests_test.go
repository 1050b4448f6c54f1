package templatecheck

import "testing"

// TestFunctionsMayReadTheManifestsTheyCheck: every function that reads an
// archive's manifest may GetObject it. Without the grant S3 answers 403:
// record, which accepts a backup only when its manifest says verified,
// would leave every backup unrecorded.
func TestFunctionsMayReadTheManifestsTheyCheck(t *testing.T) {
	_, tp := load(t)
	key := testArchivePrefix + "20181f26d9e94c81acdf9496133d4f23/Stores-2019/2026/11/29/8ccf2a5b428d423c92759150dcddc338.xml.manifest.json"
	for _, fn := range []string{"CopyToS3Function", "ConvertFunction", "RestoreFunction", "RecordFunction", "InventoryFunction"} {
		stmts := functionStatements(t, tp, fn)
		for _, bucket := range []string{testBucket, testExistingBucket} {
			if arn := "arn:" + testPartition + ":s3:::" + bucket + "/" + key; !allowed(t, stmts, "s3:GetObject", arn) {
				t.Errorf("%s may not read %s", fn, arn)
			}
		}
	}
}
