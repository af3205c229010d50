// Fleet policy suite on ext4: see helpers/fleet-policy.ts.
import test from 'ava'
import { fleetPolicy } from './helpers/fleet-policy'

fleetPolicy(test, 'ext4')
