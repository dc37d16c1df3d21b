// faas completion bash|zsh|fish: prints a completion script for the shell, generated from the
// command table, so it never lists a command that does not exist. Install it with, e.g.,
//   faas completion bash > /etc/bash_completion.d/faas
//   faas completion zsh > "${fpath[1]}/_faas"
//   faas completion fish > ~/.config/fish/completions/faas.fish
import type { CommandGroup } from './command.js';

/** group (or single command) -> its actions ([] for a single command). */
export type CommandTree = () => Record<string, string[]>;

const GLOBALS = ['--json', '--endpoint', '--api-key', '--help', '--version'];

export function bashScript(tree: Record<string, string[]>): string {
  const cases = Object.entries(tree)
    .filter(([, actions]) => actions.length)
    .map(([group, actions]) => `    ${group}) COMPREPLY=($(compgen -W "${actions.join(' ')}" -- "$cur")) ;;`)
    .join('\n');
  return `# faas completion for bash
_faas() {
  local cur=\${COMP_WORDS[COMP_CWORD]} words=() w
  for w in "\${COMP_WORDS[@]:1:COMP_CWORD-1}"; do [[ $w == -* ]] || words+=("$w"); done
  if [[ $cur == -* ]]; then COMPREPLY=($(compgen -W "${GLOBALS.join(' ')}" -- "$cur")); return; fi
  if (( \${#words[@]} == 0 )); then COMPREPLY=($(compgen -W "${Object.keys(tree).join(' ')}" -- "$cur")); return; fi
  (( \${#words[@]} == 1 )) || return
  case \${words[0]} in
${cases}
  esac
}
complete -o default -F _faas faas
`;
}

export function zshScript(tree: Record<string, string[]>): string {
  // zsh runs the bash function through bashcompinit, so both shells complete the same words.
  return `#compdef faas
autoload -U +X bashcompinit && bashcompinit
${bashScript(tree)}`;
}

export function fishScript(tree: Record<string, string[]>): string {
  const groups = Object.keys(tree);
  const lines = ['# faas completion for fish', 'complete -c faas -f'];
  lines.push(`complete -c faas -n 'not __fish_seen_subcommand_from ${groups.join(' ')}' -a '${groups.join(' ')}'`);
  for (const [group, actions] of Object.entries(tree)) {
    if (actions.length) lines.push(`complete -c faas -n '__fish_seen_subcommand_from ${group}; and not __fish_seen_subcommand_from ${actions.join(' ')}' -a '${actions.join(' ')}'`);
  }
  for (const option of GLOBALS) lines.push(`complete -c faas -l ${option.slice(2)}`);
  return `${lines.join('\n')}\n`;
}

export function completionCommands(tree: CommandTree): CommandGroup {
  const shell = (name: string, script: (t: Record<string, string[]>) => string) => ({
    usage: '',
    summary: `Print the ${name} completion script (see the top of src/cli/completion.ts for where to put it)`,
    async run(ctx: Parameters<CommandGroup[string]['run']>[0]) {
      const text = script(tree());
      if (ctx.out.json) ctx.out.result({ shell: name, script: text });
      else process.stdout.write(text);
    },
  });
  return { bash: shell('bash', bashScript), zsh: shell('zsh', zshScript), fish: shell('fish', fishScript) };
}
