// pool.removeVolumes and dependents (docs/design.md §3, §7) on ext4: see helpers/pool-remove.ts.
import test from 'ava'
import { poolRemove } from './helpers/pool-remove'

poolRemove(test, 'ext4')
