package webhook

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// maxAuth bounds the Authorization header's value: a bearer token or a JWT fits many times over,
// and a file mounted by mistake (a whole kubeconfig, a certificate bundle) is refused.
const maxAuth = 8 << 10

// ReadAuth reads the Authorization header's value from the file at path: its whole content,
// without the spaces and newline around it (a Secret made with --from-file ends in one).
// It must be one line of printable text: a header cannot carry a newline, and a value with a
// control character in it is a file mounted by mistake.
func ReadAuth(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("read the Authorization header: %w", err)
	}
	defer func() { _ = f.Close() }()
	raw, err := io.ReadAll(io.LimitReader(f, maxAuth+1))
	if err != nil {
		return "", fmt.Errorf("read the Authorization header from %s: %w", path, err)
	}
	if len(raw) > maxAuth {
		return "", fmt.Errorf("%s is longer than %d bytes: not an Authorization header's value", path, maxAuth)
	}
	v := strings.TrimSpace(string(raw))
	if v == "" {
		return "", fmt.Errorf("%s is empty: want the Authorization header's whole value (Bearer <token>)", path)
	}
	if strings.ContainsFunc(v, func(r rune) bool { return r < ' ' && r != '\t' || r == 0x7f }) {
		return "", errors.New(path + " holds a line break or a control character: want the Authorization header's value on one line")
	}
	return v, nil
}

// AuthFile is a Sender's Auth that reads the file at path before each attempt, so that a
// Secret rotated in place (the kubelet updates a mounted Secret's files) is used from its next
// event on, without a restart.
func AuthFile(path string) func() (string, error) {
	return func() (string, error) { return ReadAuth(path) }
}
