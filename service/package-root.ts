// The package's root folder, where static/ and docs/ live. This file runs as service/package-root.ts
// under tap and as dist/service/package-root.js after the build, so walk up to the nearest package.json
// instead of counting `..`s.
import { existsSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

function findRoot (from: string): string {
  let dir = from
  // Bounded: a path has finitely many parents, and dirname('/') is '/'.
  for (;;) {
    if (existsSync(join(dir, 'package.json'))) return dir
    const parent = dirname(dir)
    if (parent === dir) return dirname(from)
    dir = parent
  }
}

/** Absolute path of the folder holding this package's package.json. */
export const packageRoot: string = findRoot(dirname(fileURLToPath(import.meta.url)))
