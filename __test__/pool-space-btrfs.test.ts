// Space suite on btrfs: see helpers/pool-space.ts.
import test from 'ava'
import { poolSpace } from './helpers/pool-space'

poolSpace(test, 'btrfs')
