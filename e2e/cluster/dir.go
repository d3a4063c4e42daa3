package cluster

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Cluster dirs are os.TempDir()/macaque-e2e-*, each with an owner file naming
// the process that started it.
const (
	dirPrefix = "macaque-e2e-"
	ownerFile = "owner.pid"
)

// makeDir creates the temp dir of a new control plane, first removing those
// left behind by test binaries that died without running Stop (SIGKILL, the
// go test timeout, an interrupt outside RunMain): the kernel killed their
// components, but nothing removed their files.
func makeDir() (string, error) {
	removeOrphanDirs()
	dir, err := os.MkdirTemp("", dirPrefix)
	if err != nil {
		return "", fmt.Errorf("create cluster dir: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, ownerFile), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		_ = os.RemoveAll(dir)
		return "", fmt.Errorf("write cluster dir owner: %w", err)
	}
	return dir, nil
}

// removeOrphanDirs removes the cluster dirs whose owner process is gone. It
// is best effort: a dir it cannot judge or remove is left alone.
func removeOrphanDirs() {
	matches, err := filepath.Glob(filepath.Join(os.TempDir(), dirPrefix+"*"))
	if err != nil {
		return
	}
	for _, dir := range matches {
		data, err := os.ReadFile(filepath.Join(dir, ownerFile))
		if err != nil {
			continue // still being created, or not ours
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
		if err != nil || pid == os.Getpid() {
			continue
		}
		if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); errors.Is(err, os.ErrNotExist) {
			_ = os.RemoveAll(dir)
		}
	}
}
