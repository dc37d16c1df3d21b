// Recognises the remote half of a legacy scp transfer (`scp -O`: the client runs `scp -t DEST` or
// `scp -f SRC…` on the server). Those commands go to the agent's built-in scp server, so images
// need no scp binary. Anything with shell syntax beyond quoting stays a shell command.

/** The arguments after `scp` when `command` is a plain `scp -t|-f …` invocation, else null. */
export function scpArgs(command: string): string[] | null {
  const words = shellWords(command);
  if (!words || words.length < 2 || !/(^|\/)scp$/.test(words[0])) return null;
  // `host:~/x` arrives as `~/x`: root's home, as a shell would expand it.
  const args = words.slice(1).map((a) => (a === '~' ? '/root' : a.startsWith('~/') ? `/root${a.slice(1)}` : a));
  const flags = args.filter((a) => /^-[a-zA-Z]+$/.test(a)).join('');
  return /[tf]/.test(flags) ? args : null;
}

/** POSIX-shell word splitting for quotes and backslashes only; null on any other shell syntax. */
export function shellWords(s: string): string[] | null {
  const out: string[] = [];
  let cur = '';
  let inWord = false;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === "'") {
      const end = s.indexOf("'", i + 1);
      if (end < 0) return null;
      cur += s.slice(i + 1, end);
      i = end;
      inWord = true;
    } else if (c === '"') {
      let j = i + 1;
      for (; j < s.length && s[j] !== '"'; j++) {
        if (s[j] === '\\' && j + 1 < s.length && '"\\$`\n'.includes(s[j + 1])) j++;
        else if ('$`'.includes(s[j])) return null;
        cur += s[j];
      }
      if (j >= s.length) return null;
      i = j;
      inWord = true;
    } else if (c === '\\') {
      if (i + 1 >= s.length) return null;
      cur += s[++i];
      inWord = true;
    } else if (c === ' ' || c === '\t') {
      if (inWord) out.push(cur);
      cur = '';
      inWord = false;
    } else if (';&|<>()$`*?[]{}#\n'.includes(c)) {
      return null;
    } else {
      cur += c;
      inWord = true;
    }
  }
  if (inWord) out.push(cur);
  return out;
}
