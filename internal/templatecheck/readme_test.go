package templatecheck

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/sdsops/sdsops/internal/task"
)

// readme returns README.md.
func readme(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// readmeSection returns one section of README.md: from its heading to the
// next heading of the same or a higher level.
func readmeSection(t *testing.T, heading string) string {
	t.Helper()
	text := readme(t)
	loc := regexp.MustCompile(`(?m)^(#+) ` + regexp.QuoteMeta(heading) + `\s*$`).FindStringSubmatchIndex(text)
	if loc == nil {
		t.Fatalf("README.md has no section %q", heading)
	}
	rest := text[loc[1]:]
	next := regexp.MustCompile(fmt.Sprintf(`^#{1,%d} `, loc[3]-loc[2]))
	end, fenced := 0, false
	// A "# comment" line of a shell example is not a heading.
	for line := range strings.Lines(rest) {
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			fenced = !fenced
		}
		if !fenced && next.MatchString(line) {
			return rest[:end]
		}
		end += len(line)
	}
	return rest
}

// TestReadmeNamesEveryStateMachine: each state machine of the template is
// named in the README, its ARN's stack output is listed, and the make up
// sample shows its variable.
func TestReadmeNamesEveryStateMachine(t *testing.T) {
	src, _ := load(t)
	text := readme(t)
	sms := src.ofType("AWS::Serverless::StateMachine")
	if len(sms) == 0 {
		t.Fatal("template.yaml has no state machines")
	}
	for _, id := range sortedKeys(sms) {
		name := machineName(t, sms[id])
		for _, want := range []string{
			"`" + name + "`",
			"`" + id + "Arn`",
			"export SM_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_")) + "=",
		} {
			if !strings.Contains(text, want) {
				t.Errorf("state machine %s: README.md does not contain %s", id, want)
			}
		}
	}
}

// TestReadmeConfigurationTable: every variable the functions are given in
// template.yaml, and every one the configuration code reads, is in the
// README's configuration table.
func TestReadmeConfigurationTable(t *testing.T) {
	src, _ := load(t)
	table := readmeSection(t, "Configuration (environment of the functions)")
	vars := map[string]string{}
	for k := range obj(obj(obj(src.Globals["Function"])["Environment"])["Variables"]) {
		vars[k] = "template.yaml Globals"
	}
	for id, fn := range src.ofType("AWS::Serverless::Function") {
		for k := range obj(obj(fn.Properties["Environment"])["Variables"]) {
			vars[k] = "template.yaml " + id
		}
	}
	if len(vars) == 0 {
		t.Fatal("no environment variables found in template.yaml; the check would prove nothing")
	}
	// The variables ConfigFromEnv asks for, whatever their value.
	if _, err := task.ConfigFromEnv(func(k string) string {
		if _, ok := vars[k]; !ok {
			vars[k] = "task.ConfigFromEnv"
		}
		return ""
	}); err != nil {
		t.Fatalf("ConfigFromEnv with an empty environment: %v", err)
	}
	for _, k := range sortedKeys(vars) {
		if !strings.Contains(table, "`"+k+"`") {
			t.Errorf("%s (read by %s) is missing from the README's configuration table", k, vars[k])
		}
	}
}

// TestReadmeListsEveryRoute: every method of the deployed API is in the
// README as `METHOD /path`.
func TestReadmeListsEveryRoute(t *testing.T) {
	_, tp := load(t)
	text := readmeSection(t, "API")
	routes := 0
	for id, api := range tp.ofType("AWS::ApiGateway::RestApi") {
		for path, item := range obj(obj(api.Properties["Body"])["paths"]) {
			for _, m := range httpMethods {
				if obj(item)[m] == nil || m == "options" {
					continue
				}
				routes++
				route := strings.ToUpper(m) + " " + path
				if !strings.Contains(text, "`"+route+"`") {
					t.Errorf("API %s: route %s is missing from the README's API section", id, route)
				}
			}
		}
	}
	if routes == 0 {
		t.Fatal("the API has no routes; the check would prove nothing")
	}
}
