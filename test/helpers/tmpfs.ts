// Mounts and fills the small tmpfs the fault tests write logs to; every mount is undone in teardown.
import { closeSync, chmodSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { run } from '../../src/sys/exec.js'

interface Teardown {
  teardown(fn: () => unknown): void
}

/** A 16 KiB tmpfs in a fresh temp dir, writable by the sidecar's uid; unmounted in teardown. */
export async function smallTmpfs(t: Teardown, tag: string): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), `slt-log-${tag}-`))
  t.teardown(async () => {
    await run('umount', ['-l', dir], { allowFailure: true })
    rmSync(dir, { recursive: true, force: true })
  })
  await run('mount', ['-t', 'tmpfs', '-o', 'size=16k,mode=0777', `slt-log-${tag}`, dir])
  chmodSync(dir, 0o777)
  return dir
}

/** Writes 4 KiB blocks until the filesystem says ENOSPC; returns the filler's path. */
export function fill(dir: string, name = 'filler'): string {
  const path = join(dir, name)
  const fd = openSync(path, 'a')
  const block = Buffer.alloc(4096, 0x2e)
  try {
    for (let i = 0; i < 64; i++) writeSync(fd, block)
    throw new Error(`${dir} is not full after 256 KiB`)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err
  } finally {
    closeSync(fd)
  }
  return path
}
