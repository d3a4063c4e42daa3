package main

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/kelseyhightower/envconfig"
)

// configVar is one variable Config is read from, as envconfig itself names and defaults it.
type configVar struct {
	name     string // MACAQUE_ and the split_words form of the field
	def      string // the default tag; "" when there is none
	required bool
}

// configVars lists Config's variables through envconfig's own usage machinery, so that the
// names are the ones envconfig reads (prefix, split_words) and the defaults the ones it applies.
func configVars(t *testing.T) []configVar {
	t.Helper()
	const sep = "\x1f" // in no name nor default
	var b strings.Builder
	format := "{{range .}}{{usage_key .}}" + sep + "{{usage_default .}}" + sep + "{{usage_required .}}\n{{end}}"
	if err := envconfig.Usagef(envPrefix, &Config{}, &b, format); err != nil {
		t.Fatalf("list Config's variables: %v", err)
	}
	var vars []configVar
	for line := range strings.Lines(b.String()) {
		f := strings.Split(strings.TrimSuffix(line, "\n"), sep)
		if len(f) != 3 {
			t.Fatalf("envconfig usage line %q: want 3 fields, got %d", line, len(f))
		}
		vars = append(vars, configVar{name: f[0], def: f[1], required: f[2] == "true"})
	}
	if len(vars) == 0 {
		t.Fatal("envconfig lists no variable of Config")
	}
	return vars
}

// settingsRow is one row of the README's settings table: the variables its first cell names and
// its default cell.
type settingsRow struct {
	line int // 1-based, in README.md
	vars []string
	def  string
}

// codeSpan matches a Markdown code span; its text is the submatch.
var codeSpan = regexp.MustCompile("`([^`]*)`")

// settingsTable returns the rows of the first table under README.md's "## Settings" heading.
func settingsTable(readme string) ([]settingsRow, error) {
	lines := strings.Split(readme, "\n")
	start := slices.Index(lines, "## Settings")
	if start < 0 {
		return nil, fmt.Errorf(`no "## Settings" heading`)
	}
	i := start + 1
	for i < len(lines) && !strings.HasPrefix(lines[i], "|") && !strings.HasPrefix(lines[i], "## ") {
		i++
	}
	if i+1 >= len(lines) || !strings.HasPrefix(lines[i], "| variable | default |") || !strings.HasPrefix(lines[i+1], "|---") {
		return nil, fmt.Errorf(`no table headed "| variable | default | ..." under "## Settings" (line %d)`, start+1)
	}
	var rows []settingsRow
	for i += 2; i < len(lines) && strings.HasPrefix(lines[i], "|"); i++ {
		cells := strings.Split(lines[i], "|")
		if len(cells) < 4 {
			return nil, fmt.Errorf("README.md:%d: a settings row needs a variable, a default and a meaning: %q", i+1, lines[i])
		}
		row := settingsRow{line: i + 1, def: strings.TrimSpace(cells[2])}
		for _, m := range codeSpan.FindAllStringSubmatch(cells[1], -1) {
			row.vars = append(row.vars, m[1])
		}
		rows = append(rows, row)
	}
	return rows, nil
}

// settingsDrift lists every way the README's settings table differs from vars: a variable
// missing or given twice, a default other than Config's, a MACAQUE_ variable Config lacks.
// The default cell says `(required)` for a required variable, names Config's default as its
// first code span (`5m`, `0` (off)), and, for a variable without one, holds no code span
// (it says in words what an unset variable means: (none), macaque's own...).
func settingsDrift(readme string, vars []configVar) []string {
	rows, err := settingsTable(readme)
	if err != nil {
		return []string{err.Error()}
	}
	var drift []string
	known := map[string]bool{}
	for _, v := range vars {
		known[v.name] = true
		var found []settingsRow
		for _, r := range rows {
			if slices.Contains(r.vars, v.name) {
				found = append(found, r)
			}
		}
		if len(found) == 0 {
			drift = append(drift, fmt.Sprintf("%s: no row in the settings table", v.name))
			continue
		}
		if len(found) > 1 {
			drift = append(drift, fmt.Sprintf("%s: %d rows in the settings table, want one", v.name, len(found)))
		}
		if why := defaultDrift(v, found[0].def); why != "" {
			drift = append(drift, fmt.Sprintf("README.md:%d: %s: %s", found[0].line, v.name, why))
		}
	}
	for _, r := range rows {
		for _, name := range r.vars {
			if strings.HasPrefix(name, envPrefix+"_") && !known[name] {
				drift = append(drift, fmt.Sprintf("README.md:%d: %s is in the settings table but not in Config", r.line, name))
			}
		}
	}
	return drift
}

// defaultDrift says how cell, a row's default cell, fails to state v's default; "" if it does.
func defaultDrift(v configVar, cell string) string {
	spans := codeSpan.FindAllStringSubmatch(cell, -1)
	if v.required {
		if cell != "(required)" {
			return fmt.Sprintf("required, but its default cell says %q, want (required)", cell)
		}
		return ""
	}
	if v.def == "" {
		if len(spans) > 0 {
			return fmt.Sprintf("Config has no default, but its default cell names `%s`", spans[0][1])
		}
		return ""
	}
	if len(spans) == 0 || spans[0][1] != v.def {
		return fmt.Sprintf("its default cell says %q, want Config's default `%s` first", cell, v.def)
	}
	return ""
}

// TestREADMESettings keeps the README's settings table equal to Config: every variable
// envconfig reads is in it once with its default, and it names no MACAQUE_ variable that
// macaque would refuse as unknown.
func TestREADMESettings(t *testing.T) {
	vars := configVars(t)
	for _, d := range settingsDrift(readRepoFile(t, "README.md"), vars) {
		t.Error(d)
	}
}

// TestREADMESettingsDrift checks that settingsDrift sees each kind of drift, on the README
// changed the way a forgotten edit would change it.
func TestREADMESettingsDrift(t *testing.T) {
	vars := configVars(t)
	readme := readRepoFile(t, "README.md")
	if drift := settingsDrift(readme, vars); len(drift) > 0 {
		t.Fatalf("the README already drifts (TestREADMESettings says how): %v", drift)
	}
	rows := map[string]string{} // the whole line of each row the cases edit
	for _, name := range []string{"MACAQUE_COOLDOWN", "MACAQUE_RECOVERY_TIMEOUT", "MACAQUE_SELECTOR", "MACAQUE_CRONTAB", "MACAQUE_LOG_LEVEL", "MACAQUE_MODE"} {
		rows[name] = regexp.MustCompile("(?m)^\\| `" + name + "` \\|.*\n").FindString(readme)
		if rows[name] == "" {
			t.Fatalf("README.md: no row for %s", name)
		}
	}
	cases := []struct {
		name string
		edit func(string) string
		want string // in one of the drifts reported
	}{
		{"row removed", func(s string) string {
			return strings.Replace(s, rows["MACAQUE_COOLDOWN"], "", 1)
		}, "MACAQUE_COOLDOWN: no row"},
		{"default changed", func(s string) string {
			return strings.Replace(s, rows["MACAQUE_RECOVERY_TIMEOUT"], strings.Replace(rows["MACAQUE_RECOVERY_TIMEOUT"], "| `5m` |", "| `10m` |", 1), 1)
		}, "MACAQUE_RECOVERY_TIMEOUT: its default cell says \"`10m`\""},
		{"default given where Config has none", func(s string) string {
			return strings.Replace(s, rows["MACAQUE_SELECTOR"], strings.Replace(rows["MACAQUE_SELECTOR"], "| (empty: every pod) |", "| `app=web` |", 1), 1)
		}, "MACAQUE_SELECTOR: Config has no default"},
		{"required no longer said", func(s string) string {
			return strings.Replace(s, rows["MACAQUE_CRONTAB"], strings.Replace(rows["MACAQUE_CRONTAB"], "| (required) |", "| `@hourly` |", 1), 1)
		}, "MACAQUE_CRONTAB: required"},
		{"a variable Config lacks", func(s string) string {
			return strings.Replace(s, rows["MACAQUE_LOG_LEVEL"], rows["MACAQUE_LOG_LEVEL"]+"| `MACAQUE_LOG_COLOUR` | `false` | colours |\n", 1)
		}, "MACAQUE_LOG_COLOUR is in the settings table but not in Config"},
		{"row given twice", func(s string) string {
			return strings.Replace(s, rows["MACAQUE_MODE"], rows["MACAQUE_MODE"]+rows["MACAQUE_MODE"], 1)
		}, "MACAQUE_MODE: 2 rows"},
		{"table gone", func(s string) string {
			return strings.Replace(s, "| variable | default |", "| name | default |", 1)
		}, "no table"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			drift := settingsDrift(c.edit(readme), vars)
			if !slices.ContainsFunc(drift, func(d string) bool { return strings.Contains(d, c.want) }) {
				t.Errorf("drift %q, want one containing %q", drift, c.want)
			}
		})
	}
}
