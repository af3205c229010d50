// Real client suite on ext4: see helpers/pool-client.ts.
import test from 'ava'
import { poolClient } from './helpers/pool-client'

poolClient(test, 'ext4')
