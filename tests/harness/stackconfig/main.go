// Command stackconfig prints, as JSON, the config map that the Pulumi engine hands to a program
// for one stack of each project given, computed with Pulumi's own Go SDK:
//
//	stackconfig [-stack dev] DIR...
//
// reads DIR/Pulumi.yaml and DIR/Pulumi.<stack>.yaml of each DIR and prints one JSON object
// mapping each DIR to
//
//	{"config": {"proj:key": "value", ...}, "secrets": ["proj:key", ...], "warnings": [...]}
//
// or to {"error": "...", "stage": "stack-name|project|stack|validate|decrypt"}.
// Secure values cannot be decrypted offline: they read "[secret]", as in Pulumi's blinding decrypter,
// and a declared type is not checked against them. A missing stack file reads as an empty one, as
// in Pulumi. Where Pulumi itself depends on Go's random map order (a key given both as `mode` and
// `proj:mode`), so does the output.
//
// Loading and value encoding are Pulumi's (workspace.LoadProject, workspace.LoadProjectStack,
// config.Map.Decrypt). Merging the `config:` declarations of Pulumi.yaml lives in the pkg module
// (pkg/workspace/config.go, ValidateStackConfigAndApplyProjectConfig); applyProjectConfig below
// follows it step by step with the SDK's exported pieces, without an ESC environment.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/common/diag"
	"github.com/pulumi/pulumi/sdk/v3/go/common/diag/colors"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/config"
	"github.com/pulumi/pulumi/sdk/v3/go/common/tokens"
	"github.com/pulumi/pulumi/sdk/v3/go/common/workspace"
)

func main() {
	stack := flag.String("stack", "dev", "stack name: reads Pulumi.<stack>.yaml")
	flag.Parse()
	if flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: stackconfig [-stack NAME] DIR...")
		os.Exit(2)
	}
	answers := map[string]any{}
	for _, dir := range flag.Args() {
		out, err := run(dir, *stack)
		if err != nil {
			out = map[string]any{"error": err.Error(), "stage": stageOf(err)}
		}
		answers[dir] = out
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(answers); err != nil {
		os.Exit(1)
	}
}

type stageError struct {
	stage string
	err   error
}

func (e stageError) Error() string { return e.err.Error() }

func stageOf(err error) string {
	var se stageError
	if errors.As(err, &se) {
		return se.stage
	}
	return ""
}

func run(dir, stack string) (map[string]any, error) {
	if _, err := tokens.ParseStackName(stack); err != nil {
		return nil, stageError{"stack-name", err}
	}
	project, err := workspace.LoadProject(filepath.Join(dir, "Pulumi.yaml"))
	if err != nil {
		return nil, stageError{"project", err}
	}
	var warnings bytes.Buffer
	sink := diag.DefaultSink(&warnings, &warnings, diag.FormatOptions{Color: colors.Never})
	ps, err := workspace.LoadProjectStack(sink, project, filepath.Join(dir, "Pulumi."+stack+".yaml"))
	if err != nil {
		return nil, stageError{"stack", err}
	}
	if err := applyProjectConfig(stack, project, ps.Config); err != nil {
		return nil, stageError{"validate", err}
	}
	// The engine decrypts with the stack's secrets manager (a panicking crypter when there are no
	// secrets), never the NopDecrypter, so values take the same unmarshal/re-marshal path as here.
	decrypted, err := ps.Config.Decrypt(config.NewBlindingDecrypter())
	if err != nil {
		return nil, stageError{"decrypt", err}
	}
	values := map[string]string{}
	for k, v := range decrypted {
		values[k.String()] = v
	}
	secrets := []string{}
	for _, k := range ps.Config.SecureKeys() {
		secrets = append(secrets, k.String())
	}
	slices.Sort(secrets)
	return map[string]any{"config": values, "secrets": secrets, "warnings": lines(warnings.String())}, nil
}

// applyProjectConfig is pkg/workspace/config.go mergeConfig(validate=true) with an empty environment:
// declared keys missing from the stack take their `value:` or `default:`, then every explicitly
// typed key is checked against its declared type.
func applyProjectConfig(stack string, project *workspace.Project, cfg config.Map) error {
	name := project.Name.String()
	declared := make([]string, 0, len(project.Config))
	for k := range project.Config {
		declared = append(declared, k)
	}
	slices.Sort(declared)

	var missing []string
	for _, k := range declared {
		decl := project.Config[k]
		key, err := configKey(name, k)
		if err != nil {
			return err
		}
		_, found, err := cfg.Get(key, true)
		if err != nil {
			return fmt.Errorf("getting stack config value for key '%v': %w", key.String(), err)
		}
		if found {
			continue
		}
		value := decl.Value
		if decl.Default != nil {
			value = decl.Default
		}
		if value == nil {
			if key.Namespace() == name {
				missing = append(missing, k)
			}
			continue
		}
		v, err := configValue(value)
		if err != nil {
			return err
		}
		if err := cfg.Set(key, v, true); err != nil {
			return err
		}
	}
	if len(missing) > 0 {
		return missingKeysError(missing, stack)
	}

	dec := config.NewBlindingDecrypter()
	if _, err := cfg.Decrypt(dec); err != nil {
		return err
	}
	for _, k := range declared {
		decl := project.Config[k]
		key, err := configKey(name, k)
		if err != nil {
			return err
		}
		v, _, err := cfg.Get(key, true)
		if err != nil {
			return fmt.Errorf("getting stack config value for key '%v': %w", key.String(), err)
		}
		if !decl.IsExplicitlyTyped() {
			continue
		}
		if decl.Secret && !v.Secure() {
			return fmt.Errorf("Stack '%v' with configuration key '%v' must be encrypted as it's secret", stack, k)
		}
		if v.Secure() {
			continue // the plaintext is needed to check the type; offline we only have "[secret]"
		}
		text, err := v.Value(dec)
		if err != nil {
			return err
		}
		var content any = text
		if v.Object() {
			if err := json.Unmarshal([]byte(text), &content); err != nil {
				return err
			}
		}
		if !workspace.ValidateConfigValue(*decl.Type, decl.Items, content) {
			return fmt.Errorf("Stack '%v' with configuration key '%v' must be of type '%v'",
				stack, k, workspace.InferFullTypeName(*decl.Type, decl.Items))
		}
	}
	return nil
}

func configKey(project, k string) (config.Key, error) {
	if strings.Contains(k, ":") {
		return config.ParseKey(k)
	}
	return config.MustMakeKey(project, k), nil
}

// configValue is pkg/workspace/config.go createConfigValue: string, int and bool defaults become
// their %v text; anything else (floats, lists, maps) becomes a JSON object value.
func configValue(raw any) (config.Value, error) {
	switch raw.(type) {
	case string, int, bool:
		return config.NewValue(fmt.Sprintf("%v", raw)), nil
	}
	simple, err := workspace.SimplifyMarshalledValue(raw)
	if err != nil {
		return config.Value{}, err
	}
	text, err := json.Marshal(simple)
	if err != nil {
		return config.Value{}, err
	}
	return config.NewObjectValue(string(text)), nil
}

func missingKeysError(keys []string, stack string) error {
	slices.Sort(keys)
	quoted := make([]string, len(keys))
	for i, k := range keys {
		quoted[i] = "'" + k + "'"
	}
	noun, list := "value", quoted[0]
	if len(keys) > 1 {
		noun = "values"
		list = strings.Join(quoted[:len(keys)-1], ", ") + " and " + quoted[len(keys)-1]
	}
	return fmt.Errorf("Stack '%v' is missing configuration %v %v", stack, noun, list)
}

func lines(s string) []string {
	out := []string{}
	for _, l := range strings.Split(strings.TrimSpace(s), "\n") {
		if l != "" {
			out = append(out, l)
		}
	}
	return out
}
