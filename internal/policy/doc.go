// Package policy decides whether a pick may die now. Each reason it may not is a Rule with one
// method that says why not (and which workload to blame), and a tick asks its Rules in order,
// as chaoskube's candidate filters and kured's blockers read: the pod still running, old enough
// (MACAQUE_MIN_POD_AGE), not opted out (chaos.macaque.dev/exclude), its workload at full
// strength and not rolling out (the steady-state guard), not already hit this tick, and not
// cooling down (MACAQUE_COOLDOWN, whose state this package keeps in a ConfigMap). A
// PodDisruptionBudget's refusal is the API server's, met at the kill itself. Before any pick,
// the pause switch (chaos.macaque.dev/paused on macaque's own Deployment) may stop the whole tick.
package policy
