// Real client suite on btrfs: see helpers/pool-client.ts.
import test from 'ava'
import { poolClient } from './helpers/pool-client'

poolClient(test, 'btrfs')
