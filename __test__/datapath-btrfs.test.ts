// Data in and out of volumes on btrfs: see helpers/datapath-suite.ts.
import test from 'ava'
import { datapathSuite } from './helpers/datapath-suite'

datapathSuite(test, 'btrfs')
