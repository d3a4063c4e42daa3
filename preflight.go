package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/macaque-chaos/macaque/internal/policy"

	"github.com/macaque-chaos/macaque/internal/kube"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// preflightGuard checks that macaque may read every workload kind the guard reads, so that a
// Role without them stops macaque at start rather than failing every tick. The chain is read
// for the opt-out annotation even with the guard off (healthOff), so the check runs then too,
// and its message names the setting that needs it.
func preflightGuard(ctx context.Context, api policy.WorkloadAPI, namespace string, healthOff bool) error {
	ctx, cancel := context.WithTimeout(ctx, preflightTimeout)
	defer cancel()
	for _, k := range kube.WorkloadKinds {
		err := api.ProbeGet(ctx, namespace, k)
		if kube.IsRBACDenial(err) && healthOff {
			return badSetting("NAMESPACE", "cannot get %s in %q (macaque reads the controllers above each pick for the %s annotation, even with MACAQUE_REQUIRE_HEALTHY=false, and needs get on %s: grant it in macaque's Role there): %v",
				k.Resource, namespace, policy.ExcludeAnnotation, strings.Join(kube.WorkloadResources(), ", "), err)
		}
		if kube.IsRBACDenial(err) {
			return badSetting("REQUIRE_HEALTHY", "cannot get %s in %q (the steady-state guard and the %s annotation need get on %s; grant it in macaque's Role): %v",
				k.Resource, namespace, policy.ExcludeAnnotation, strings.Join(kube.WorkloadResources(), ", "), err)
		}
		if err != nil {
			return fmt.Errorf("check that macaque may get %s in %q: %w", k.Resource, namespace, err)
		}
	}
	return nil
}

// preflightCooldown checks at start that the state's ConfigMap exists and that macaque may
// read and update it, so that a missing one stops macaque with one line instead of every tick.
func preflightCooldown(ctx context.Context, api policy.StateAPI, namespace string) error {
	ctx, cancel := context.WithTimeout(ctx, preflightTimeout)
	defer cancel()
	cm, err := api.GetConfigMap(ctx, namespace, policy.CooldownConfigMap)
	if apierrors.IsNotFound(err) {
		return badSetting("COOLDOWN", "the ConfigMap %s that keeps the cooldown state is not in %q: macaque.yml creates it (an empty one will do), or unset MACAQUE_COOLDOWN", policy.CooldownConfigMap, namespace)
	}
	if kube.IsRBACDenial(err) {
		return badSetting("COOLDOWN", "cannot get ConfigMap %s in %q (macaque's Role must grant get and update on it): %v", policy.CooldownConfigMap, namespace, err)
	}
	if err != nil {
		return fmt.Errorf("read the cooldown state (ConfigMap %s/%s): %w", namespace, policy.CooldownConfigMap, err)
	}
	err = api.ProbeUpdateConfigMap(ctx, cm)
	if kube.IsRBACDenial(err) {
		return badSetting("COOLDOWN", "cannot update ConfigMap %s in %q (macaque's Role must grant get and update on it): %v", policy.CooldownConfigMap, namespace, err)
	}
	if err != nil {
		return fmt.Errorf("check that macaque may update ConfigMap %s/%s: %w", namespace, policy.CooldownConfigMap, err)
	}
	return nil
}

// startCooldown builds the cooldown for MACAQUE_COOLDOWN=period (nil when 0) and checks its
// state, in namespace, macaque's own: where macaque.yml creates the ConfigMap. Out of a pod
// with no namespace of its own, the first namespace of a named scope stands in.
func startCooldown(ctx context.Context, api policy.StateAPI, period time.Duration, namespace string, sc scope) (*policy.Cooldown, error) {
	if period == 0 {
		return nil, nil
	}
	if namespace == "" && len(sc.namespaces) > 0 {
		namespace = sc.namespaces[0]
	}
	if namespace == "" {
		return nil, badSetting("COOLDOWN", "macaque's own namespace, where the ConfigMap %s keeps the cooldown state, is unknown: set POD_NAMESPACE", policy.CooldownConfigMap)
	}
	if err := preflightCooldown(ctx, api, namespace); err != nil {
		return nil, err
	}
	return policy.NewCooldown(api, namespace, period), nil
}
