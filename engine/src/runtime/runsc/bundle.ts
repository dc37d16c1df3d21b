// OCI bundles. A snapshot fixes the spec its restores must reproduce: runsc refuses a restore
// whose config differs in anything but root path, namespace paths, hostname, process env, cgroups
// path and hooks. So the engine keeps each snapshot's "template" and fills in only those fields.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface TemplateInput {
  rootfs: string;
  /** Host directory holding faas-agent, mounted read-only at /.faas. */
  agentDir: string;
  environment: Record<string, string>;
}

export interface PerSandbox {
  netnsPath: string;
  cgroupsPath: string;
  hostname: string;
}

const BASE_ENV = {
  PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
  HOME: '/root',
  LANG: 'C.UTF-8',
};

export function makeTemplate(input: TemplateInput): string {
  const env = { ...BASE_ENV, ...input.environment };
  const spec = {
    ociVersion: '1.0.2',
    process: {
      terminal: false,
      user: { uid: 0, gid: 0 },
      args: ['/.faas/faas-agent'],
      env: Object.entries(env).map(([k, v]) => `${k}=${v}`),
      cwd: '/root',
      capabilities: {
        bounding: CAPS,
        effective: CAPS,
        permitted: CAPS,
      },
      rlimits: [{ type: 'RLIMIT_NOFILE', hard: 1048576, soft: 1048576 }],
    },
    root: { path: input.rootfs, readonly: false },
    hostname: 'faas',
    mounts: [
      { destination: '/proc', type: 'proc', source: 'proc' },
      { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
      { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620'] },
      { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777'] },
      { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
      { destination: '/tmp', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev', 'mode=1777'] },
      { destination: '/.faas', type: 'bind', source: input.agentDir, options: ['rbind', 'ro'] },
    ],
    linux: {
      namespaces: [{ type: 'pid' }, { type: 'network', path: '' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }],
      cgroupsPath: '',
    },
  };
  return JSON.stringify(spec);
}

/** Writes `<dir>/config.json` from a snapshot's template and this sandbox's own fields. */
export function writeBundle(dir: string, template: string, own: PerSandbox): void {
  const spec = JSON.parse(template);
  spec.hostname = own.hostname;
  spec.linux.cgroupsPath = own.cgroupsPath;
  for (const ns of spec.linux.namespaces) if (ns.type === 'network') ns.path = own.netnsPath;
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'config.json'), JSON.stringify(spec));
}

const CAPS = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FOWNER', 'CAP_FSETID', 'CAP_KILL', 'CAP_SETGID', 'CAP_SETUID',
  'CAP_SETPCAP', 'CAP_NET_BIND_SERVICE', 'CAP_NET_RAW', 'CAP_SYS_CHROOT', 'CAP_MKNOD', 'CAP_AUDIT_WRITE',
  'CAP_SETFCAP', 'CAP_SYS_ADMIN', 'CAP_NET_ADMIN', 'CAP_SYS_PTRACE',
];
