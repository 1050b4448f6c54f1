package localrun

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Every definition in statemachine/ loads with the ARNs of the functions
// and state machines of this repository, found by their names alone.
func TestRepositoryDefinitionsResolve(t *testing.T) {
	fns, err := FunctionNames("../..")
	if err != nil {
		t.Fatal(err)
	}
	files, err := StateMachineFiles("../..")
	if err != nil {
		t.Fatal(err)
	}
	arns := map[string]string{}
	for name := range files {
		arns[name] = "arn:aws:states:us-east-1:123456789012:stateMachine:sdsops-" + name
	}
	resolve := resolver(fns, func(fn string) string { return "arn:aws:lambda:us-east-1:123456789012:function:" + fn }, arns)
	for name, file := range files {
		def, err := LoadDefinition(file, resolve)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if strings.Contains(def, "${") {
			t.Errorf("%s: placeholder left after substitution", name)
		}
	}
}

func TestLoadDefinitionPlaceholders(t *testing.T) {
	fns := []string{"startdownload", "copytos3"}
	arns := map[string]string{"backup": "arn:sm:backup", "scheduled-backup": "arn:sm:scheduled-backup"}
	resolve := resolver(fns, func(fn string) string { return "arn:fn:" + fn }, arns)
	cases := []struct {
		placeholder, want string
	}{
		{"StartDownloadFunctionArn", "arn:fn:startdownload"},
		{"CopyToS3FunctionArn", "arn:fn:copytos3"},
		{"BackupStateMachineArn", "arn:sm:backup"},
		{"BackupStateMachine", "arn:sm:backup"},
		{"ScheduledBackupStateMachineArn", "arn:sm:scheduled-backup"},
		{"RestoreFunctionArn", ""},
		{"RestoreStateMachineArn", ""},
		{"SomethingElse", ""},
	}
	dir := t.TempDir()
	for _, c := range cases {
		path := filepath.Join(dir, c.placeholder+".asl.json")
		src := `{"StartAt":"A","States":{"A":{"Type":"Task","Resource":"${` + c.placeholder + `}","End":true}}}`
		if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		def, err := LoadDefinition(path, resolve)
		switch {
		case c.want == "" && err == nil:
			t.Errorf("${%s}: loaded as %s, want an unknown placeholder error", c.placeholder, def)
		case c.want == "" && !strings.Contains(err.Error(), c.placeholder):
			t.Errorf("${%s}: error %q does not name the placeholder", c.placeholder, err)
		case c.want != "" && err != nil:
			t.Errorf("${%s}: %v", c.placeholder, err)
		case c.want != "" && !strings.Contains(def, `"Resource":"`+c.want+`"`):
			t.Errorf("${%s}: got %s, want %s", c.placeholder, def, c.want)
		}
	}
}
