// Fleet policy suite on btrfs: see helpers/fleet-policy.ts.
import test from 'ava'
import { fleetPolicy } from './helpers/fleet-policy'

fleetPolicy(test, 'btrfs')
