package kube

import (
	"errors"
	"net/http"
	"regexp"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// AnswerUnknown says whether err leaves it open whether the API server carried the request out:
// no answer at all (a timeout, a broken connection), or a 5xx, which a proxy or the server's own
// timeout may send after the write was committed.
func AnswerUnknown(err error) bool {
	var status apierrors.APIStatus
	if errors.As(err, &status) {
		return status.Status().Code >= http.StatusInternalServerError
	}
	return true
}

// ErrGone marks a pick that vanished, left the scope or changed identity before it could be deleted.
var ErrGone = errors.New("pod is gone")

// rbacDenial matches the message of a 403 from the RBAC authorizer, as opposed to one from an
// admission webhook or policy, which must not be blamed on macaque's Role.
var rbacDenial = regexp.MustCompile(`User ".*" cannot [a-z]+ resource "`)

// IsRBACDenial says whether err is RBAC's Forbidden.
func IsRBACDenial(err error) bool {
	return apierrors.IsForbidden(err) && rbacDenial.MatchString(err.Error())
}
