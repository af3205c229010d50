// Real client suite on xfs: see helpers/pool-client.ts.
import test from 'ava'
import { poolClient } from './helpers/pool-client'

poolClient(test, 'xfs')
