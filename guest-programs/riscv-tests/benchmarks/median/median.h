// See LICENSE for license details.

//**************************************************************************
// Median filters
//--------------------------------------------------------------------------

// Simple C version
void median( int n, int input[], int results[] );

// Simple assembly version
void median_asm( int n, int input[], int results[] );
