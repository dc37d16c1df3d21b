// Command seccomp-gen precompiles gVisor's seccomp programs into runsc, as upstream's release build
// does; the Go module has the machinery but ships with precompilation off, so every sandbox start
// (and every restore) compiled its filter at run time, ~8-10 ms measured.
//
// It runs inside a writable copy of the pinned gVisor module (scripts/build-runsc.sh puts it there)
// and rewrites the registration function of one precompiled-programs file in place:
//
//	go run ./tools/faas-seccomp-gen boot|gofer FILE [NAME-SUBSTRING...]
//
// Only programs whose configuration name contains every NAME-SUBSTRING are kept (the variants faas
// runs), so the generated file stays small. Options that match no kept program still work: runsc
// then compiles the filter at start, as before.
package main

import (
	"fmt"
	"os"
	"sort"
	"strings"

	"gvisor.dev/gvisor/pkg/seccomp/precompiledseccomp"
	bootconfig "gvisor.dev/gvisor/runsc/boot/filter/config"
	goferconfig "gvisor.dev/gvisor/runsc/fsgofer/filter/config"
)

const (
	emptyRegistry = "\tprograms := make(map[string]precompiledseccomp.Program)\n\tprecompiledPrograms = programs\n"
	disabledConst = "const PrecompilationDisabledAtBuildTime = true"
)

func main() {
	if len(os.Args) < 3 {
		fail("usage: seccomp-gen boot|gofer FILE [NAME-SUBSTRING...]")
	}
	var programs []precompiledseccomp.Program
	var err error
	switch os.Args[1] {
	case "boot":
		programs, err = bootconfig.PrecompiledPrograms()
	case "gofer":
		programs, err = goferconfig.PrecompiledPrograms()
	default:
		fail("unknown program set %q (want boot or gofer)", os.Args[1])
	}
	if err != nil {
		fail("precompiling: %v", err)
	}
	sort.Slice(programs, func(i, j int) bool { return programs[i].Name < programs[j].Name })

	var regs strings.Builder
	kept := 0
next:
	for _, p := range programs {
		for _, want := range os.Args[3:] {
			if !strings.Contains(p.Name, want) {
				continue next
			}
		}
		regs.WriteString(p.Registration("\t", "precompiledseccomp", "programs"))
		kept++
	}
	if kept == 0 {
		fail("no %s program matches %q", os.Args[1], os.Args[3:])
	}

	file := os.Args[2]
	src, err := os.ReadFile(file)
	if err != nil {
		fail("%v", err)
	}
	text := string(src)
	// Refuse a file whose shape changed (another gVisor version): better a loud build failure than
	// a runsc that silently compiles its filters again.
	if !strings.Contains(text, emptyRegistry) || !strings.Contains(text, disabledConst) {
		fail("%s does not have the expected empty registry; update seccomp-gen for this gVisor version", file)
	}
	text = strings.Replace(text, emptyRegistry,
		"\tprograms := make(map[string]precompiledseccomp.Program)\n"+regs.String()+"\tprecompiledPrograms = programs\n", 1)
	text = strings.Replace(text, disabledConst, "const PrecompilationDisabledAtBuildTime = false", 1)
	if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
		fail("%v", err)
	}
	fmt.Printf("%s: %d of %d programs precompiled into %s\n", os.Args[1], kept, len(programs), file)
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "seccomp-gen: "+format+"\n", args...)
	os.Exit(1)
}
