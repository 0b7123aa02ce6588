import Delta
import Foundation

