// Fleet policy suite on xfs: see helpers/fleet-policy.ts.
import test from 'ava'
import { fleetPolicy } from './helpers/fleet-policy'

fleetPolicy(test, 'xfs')
