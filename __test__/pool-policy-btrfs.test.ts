// Pool policy suite on btrfs: see helpers/pool-policy.ts.
import test from 'ava'
import { poolPolicy } from './helpers/pool-policy'

poolPolicy(test, 'btrfs')
