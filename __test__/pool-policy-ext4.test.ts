// Pool policy suite on ext4: see helpers/pool-policy.ts.
import test from 'ava'
import { poolPolicy } from './helpers/pool-policy'

poolPolicy(test, 'ext4')
