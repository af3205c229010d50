// Data in and out of volumes on ext4: see helpers/datapath-suite.ts.
import test from 'ava'
import { datapathSuite } from './helpers/datapath-suite'

datapathSuite(test, 'ext4')
