package localaws

import (
	"crypto/sha256"
	_ "embed"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// launcherSource is moto_launcher.py, embedded so that a program built from this package
// needs no source tree at run time.
//
//go:embed moto_launcher.py
var launcherSource string

// The launcher's exit statuses when moto cannot be imported, and when its version is
// outside the range the launcher's patches know.
const (
	launcherExitMotoMissing = 3
	launcherExitMotoVersion = 4
)

// InstallHint tells how to get moto_server, at the pinned version, onto a machine.
const InstallHint = `make run and make test install the pinned tools into .venv; or: pip install -r requirements-dev.txt`

// ErrMotoUnavailable is wrapped by StartMoto's error when no Python interpreter or no moto
// installation was found, so that callers can tell a missing tool from a failing one.
var ErrMotoUnavailable = errors.New("moto unavailable")

// findPython resolves the interpreter to run moto with: the explicit option, else
// $SDSOPS_PYTHON, else python3 from PATH.
func findPython(explicit string) (string, error) {
	name := explicit
	if name == "" {
		name = os.Getenv("SDSOPS_PYTHON")
	}
	if name == "" {
		name = "python3"
	}
	path, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("localaws: python interpreter %q not found (needed for moto: install Python 3; %s): %w",
			name, InstallHint, ErrMotoUnavailable)
	}
	return path, nil
}

// launcherArgs returns the interpreter arguments that run the launcher: a copy in the user's
// cache directory (so that ps shows what runs), or the source itself if none can be written.
func launcherArgs() []string {
	if path, err := writeLauncher(); err == nil {
		return []string{path}
	}
	return []string{"-c", launcherSource}
}

func writeLauncher() (string, error) {
	dir, err := os.UserCacheDir()
	if err != nil {
		dir = os.TempDir()
	}
	dir = filepath.Join(dir, "sdsops")
	sum := sha256.Sum256([]byte(launcherSource))
	path := filepath.Join(dir, fmt.Sprintf("moto_launcher-%x.py", sum[:6]))
	if b, err := os.ReadFile(path); err == nil && string(b) == launcherSource {
		return path, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	f, err := os.CreateTemp(dir, "moto_launcher-*.tmp")
	if err != nil {
		return "", err
	}
	_, err = f.WriteString(launcherSource)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path) // atomic: concurrent starts never see a partial file
	}
	if err != nil {
		os.Remove(f.Name())
		return "", err
	}
	return path, nil
}
