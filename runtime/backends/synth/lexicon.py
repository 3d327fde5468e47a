"""The synth vocabulary's tables: ~1,000 words and phrases as short lines of shared base points and small offsets.

:mod:`.vocabulary` holds the hand-tuned *anchor* points (techno, jazz, piano,
dark, …) and the parser; this module holds everything derived from them, one
table per category, in a small line format that :func:`.vocabulary` reads once
at import (a few milliseconds)::

    # names (aliases, comma-separated)   | base (entries, + averages them) | offsets
    afrobeat, afro beat                   | funk                            | tempo=112 prog=modal offbeat=.5

* **names** — every alias becomes an entry of its own (``cadenza words`` shows
  the first as the headword and the others in brackets).
* **base** — ``-`` for none, or vocabulary entries defined earlier (anchors,
  earlier lines, earlier tables); ``a + b`` takes, per dimension, the mean of
  the bases that speak about it.
* **offsets** — ``dim=v`` sets a dimension, ``dim+v`` / ``dim-v`` shifts it
  from the base (or from neutral) and clips to the valid range;
  ``pattern=NAME`` picks one drum-pattern family and ``prog=NAME`` one
  progression family (1 for it, 0 for the others, so averages behave);
  ``alone`` first sets every instrument family to 0.

The ``[anchors]`` section adds the harmony, groove and form dimensions
(``prog_*``, ``fifths``, ``offbeat``, ``laidback``, ``drop``, ``sections``,
``pattern_jazz``) to anchor entries in place, following
``/work/notes/s3/style-dims.md``'s suggested genre settings.
"""

from __future__ import annotations

TABLES = r"""
[anchors]
# harmony, groove and form of the anchor genres (in place; the names must exist)
techno, minimal techno, acid, industrial      | - | prog=modal fifths=.5 offbeat=0 drop=.9 sections=.7
minimal techno                                | - | fifths=.45
hard techno                                   | - | prog=modal fifths=.6 drop=.9 sections=.7
house, tech house, garage, uk garage, disco   | - | prog=pop fifths=.3 offbeat=1 drop=.7
deep house                                    | - | prog=pop fifths=.2 offbeat=1 drop=.6
trance, edm                                   | - | prog=pop fifths=.6 drop=1 sections=.9
jazz                                          | - | pattern=jazz prog=jazz fifths=.2 laidback=.2 drop=0 sections=.5
bossa nova, neo soul, soul                    | - | prog=jazz fifths=.3 laidback=.3 drop=0 sections=.5
lofi, lo-fi, lo-fi hip hop, chillhop          | - | prog=jazz fifths=.1 laidback=.8 drop=.1 sections=.4
hip hop, boom bap, trip hop                   | - | prog=modal fifths=.3 laidback=.5 drop=.1
orchestral, classical                         | - | prog=pop fifths=.7 drop=0 sections=.8
cinematic, soundtrack, film score             | - | prog=epic fifths=.35 drop=.4 sections=1
ambient, new age                              | - | prog=modal fifths=.65 drop=0 sections=.5
drone, dark ambient                           | - | prog=modal fifths=.3 drop=0 sections=.4
chiptune, 8-bit, video game                   | - | prog=pop fifths=.55 drop=.3
rock, metal, post rock, folk, pop, funk       | - | prog=pop fifths=.85
blues                                         | - | prog=jazz fifths=.8 laidback=.3
reggae                                        | - | prog=pop offbeat=1 laidback=.4 drop=.1
dub                                           | - | prog=modal offbeat=1 laidback=.4 drop=.1
synthwave, retrowave, vaporwave               | - | prog=epic fifths=.4 drop=.5
drum and bass, drum n bass, dnb, jungle, dubstep, trap, breakbeat, breaks | - | prog=modal fifths=.4 drop=1 sections=.9
# moods and textures that speak about form and harmony family (style-dims.md)
epic, heroic, majestic                        | - | prog=epic
chill, calm, relaxed, relaxing                | - | drop=0 sections=.4
groovy, funky                                 | - | offbeat=.5
electro, idm, downtempo, chillout             | - | prog=modal fifths=.45 drop=.4

[genres]
# electronic: the broad words
electronic, electronica, electronic music, edm style, electronique, elektronisch, elektronik, electronico, elettronica | techno + house  | tempo=124 energy=.65 acoustic=0 chip=.05
electro house, electrohouse                   | house + edm      | tempo=128 grit=.4 lead=.8 drop=1
dance, dance music, club music                | house + edm      | tempo=124 energy=.8
dance pop, dancepop                           | pop + house      | tempo=120 energy=.8 brightness=.8 pattern=four_floor
electropop, electro pop                       | pop + electro    | tempo=118 acoustic=0 pattern=four_floor
synth pop, synthpop, synth-pop                | pop + synthwave  | tempo=116 acoustic=0 pads=.8 lead=.8
new wave                                      | synth pop + rock | tempo=130 brightness=.6 grit=.2
eurodance, euro dance, euro house, europop    | edm + pop        | tempo=140 brightness=.85 minor=.6
italo disco, italo                            | disco + synth pop| tempo=120 acoustic=.1 chip=.1
nu disco, nu-disco, disco house               | disco + house    | tempo=120 acoustic=.3
french house, filter house                    | house + disco    | tempo=123 grit=.3 brightness=.55
progressive house                             | house + trance   | tempo=126 pads=.8 space=.6 drop=.9
big room                                      | edm              | tempo=128 energy=.95 grit=.4 drop=1
future house, bass house, g house, g-house    | house            | tempo=126 bass=1 grit=.4 minor=.7
tropical house                                | house + pop      | tempo=110 energy=.55 brightness=.8 plucks=.8 minor=.2
afro house, afro tech                         | house            | tempo=122 drums=1 swing=.2 acoustic=.4 minor=.6
organic house                                 | deep house       | tempo=118 acoustic=.6 plucks=.6 texture=.3
melodic house, melodic techno                 | deep house + techno | tempo=122 pads=.9 plucks=.7 space=.65 prog=epic
lo-fi house, lofi house                       | deep house + lofi | tempo=120 texture=.7 brightness=.3 pattern=four_floor
microhouse, micro house                       | minimal techno   | tempo=124 swing=.2 texture=.4
acid house                                    | acid + house     | tempo=124
chicago house                                 | house            | tempo=122 grit=.2 keys=.7
detroit techno                                | techno           | tempo=128 pads=.6 harmony=.3 minor=.6
dub techno                                    | minimal techno + dub | tempo=122 space=.9 pattern=four_floor prog=modal offbeat=.6
berlin techno, peak time techno, warehouse techno, warehouse | hard techno | tempo=135
hardcore, gabber                              | hard techno      | tempo=175 grit=1 energy=1
happy hardcore                                | hardcore + pop   | tempo=170 minor=.2 brightness=.9
hardstyle                                     | hard techno + trance | tempo=150 lead=.9 drop=1
psytrance, psy trance, psychedelic trance, goa trance, goa | trance | tempo=145 minor=.9 plucks=.8 pads=.4 prog=modal
uplifting trance                              | trance           | tempo=138 minor=.4 brightness=.85 prog=epic
progressive trance                            | trance           | tempo=132 energy=.7
tech trance                                   | trance + techno  | tempo=136
hard trance                                   | trance + hard techno | tempo=145
future bass, kawaii future bass               | edm + trap       | tempo=150 pattern=halftime brightness=.85 minor=.3 chip=.2 pads=.9
chillstep                                     | dubstep + chillout | tempo=140 energy=.45 pattern=halftime space=.8 grit=.2
melodic dubstep                               | dubstep + trance | tempo=140 pattern=halftime pads=.9 grit=.5
brostep, riddim                               | dubstep          | tempo=150 grit=1 energy=1
liquid drum and bass, liquid dnb, liquid funk, liquid | drum and bass | energy=.7 pads=.8 keys=.5 harmony=.7 minor=.5 grit=.1 space=.6
neurofunk, neuro                              | drum and bass    | grit=.9 minor=.95 brightness=.5
jump up                                       | drum and bass    | energy=1 grit=.6 minor=.6
halftime dnb                                  | drum and bass    | pattern=halftime
breakcore                                     | jungle + idm     | tempo=180 energy=1 grit=.7 texture=.5
footwork, juke                                | trap             | tempo=160 pattern=breakbeat texture=.4
jersey club                                   | trap + house     | tempo=140 pattern=breakbeat energy=.9
uk funky                                      | house            | tempo=130 pattern=breakbeat swing=.3
2-step, two step, 2 step, speed garage        | uk garage        | tempo=134
future garage                                 | uk garage + ambient | tempo=132 energy=.45 space=.8 texture=.5
grime                                         | uk garage + trap | tempo=140 minor=.9 grit=.5 pattern=halftime
drill, uk drill, brooklyn drill, drill and bass | trap           | tempo=142 minor=1 brightness=.35 pads=.5 keys=.2
phonk, drift phonk                            | trap             | tempo=130 grit=.6 texture=.5 drums=1 minor=.9 chip=.0
rap                                           | hip hop          | tempo=92
cloud rap                                     | trap + ambient   | tempo=140 energy=.45 space=.8 pads=.8 pattern=halftime
trap soul, vapor trap, dark trap              | trap             | tempo=136 energy=.55 pads=.7 harmony=.5
g-funk, g funk, west coast hip hop            | hip hop + funk   | tempo=95 lead=.7 pattern=boombap
east coast hip hop                            | boom bap         | tempo=92
crunk                                         | hip hop          | tempo=78 energy=.85 grit=.5 pattern=halftime
memphis rap                                   | hip hop + phonk  | tempo=70 pattern=halftime
lofi beats, lo-fi beats, study beats, jazzhop, jazz hop | lo-fi hip hop | tempo=82
glitch                                        | idm              | tempo=120 texture=.8 grit=.4
glitch hop                                    | glitch + hip hop | tempo=110 pattern=boombap
braindance                                    | idm              | -
ambient techno                                | ambient + techno | tempo=118 energy=.4 drums=.6 pattern=four_floor
chillwave                                     | synthwave + chillout | tempo=95 energy=.4 brightness=.55 texture=.3 space=.8
outrun                                        | retrowave        | tempo=118 energy=.75
darksynth, dark synthwave                     | synthwave + industrial | tempo=115 minor=1 brightness=.3 grit=.6
hardwave                                      | darksynth + trap | tempo=145 pattern=halftime
witch house                                   | trap + dark ambient | tempo=70 energy=.35 minor=1 brightness=.2 pattern=halftime
future rave                                   | edm + techno     | tempo=130 grit=.5 minor=.85
big beat                                      | breakbeat        | tempo=125 grit=.6 energy=.85
lounge, lounge music                          | chillout + jazz  | tempo=100 energy=.3 keys=.8 harmony=.8
nu jazz, nu-jazz                              | jazz + downtempo | tempo=110 pattern=breakbeat
acid jazz                                     | jazz + funk      | tempo=110 pattern=rock keys=.9 swing=.3
jazz fusion, fusion                           | jazz + funk      | tempo=120 lead=.8 energy=.7 pattern=rock
smooth jazz                                   | jazz + soul      | tempo=95 energy=.35 lead=.8 brightness=.5 pattern=rock laidback=.4
bebop, bop, hard bop                          | jazz             | tempo=210 energy=.8 lead=.9 swing=.6
cool jazz                                     | jazz             | tempo=110 energy=.35 space=.45
free jazz, avant garde jazz                   | jazz             | tempo=150 energy=.85 harmony=1 grit=.2
swing music, swing era, big band                  | jazz             | tempo=160 energy=.75 lead=.9 swing=.75 acoustic=1
dixieland, ragtime, new orleans jazz          | jazz             | tempo=180 minor=.1 keys=.9 lead=.8 swing=.5
latin jazz                                    | jazz + bossa nova| tempo=130 pattern=rock swing=.1 drums=.9
gypsy jazz, manouche, jazz manouche           | jazz + folk      | tempo=190 plucks=1 drums=.2 swing=.7 acoustic=1
electro swing                                 | swing + house    | tempo=125 pattern=four_floor swing=.6 lead=.8
spooky jazz, noir jazz, jazz noir             | jazz             | tempo=90 minor=.95 brightness=.3 space=.6
blues rock                                    | blues + rock     | tempo=115 grit=.6
delta blues                                   | blues            | tempo=85 drums=.1 plucks=1 acoustic=1 keys=.2
chicago blues, electric blues                 | blues            | tempo=100 grit=.4 lead=.8
r and b, rnb, r n b, contemporary r and b     | soul + hip hop   | tempo=90 pads=.6 keys=.8 harmony=.85 prog=jazz laidback=.4 pattern=boombap
motown, northern soul                         | soul             | tempo=120 energy=.75 minor=.2 drums=1 pattern=rock
gospel                                        | soul             | tempo=100 keys=1 pads=.8 minor=.2 energy=.7 acoustic=.9
doo wop, doowop                               | soul             | tempo=120 minor=.1 swing=.4 keys=.8 harmony=.4
p-funk, boogie                                | funk + disco     | tempo=110 acoustic=.3 lead=.7
electro funk, electrofunk, boogie funk | funk + electro | tempo=112 pattern=rock acoustic=.1
classic rock                                  | rock             | tempo=120 grit=.5
hard rock                                     | rock             | tempo=130 energy=.9 grit=.8
alternative rock, alternative, alt rock       | rock             | tempo=120 grit=.55 minor=.6
indie rock, indie                             | rock             | tempo=125 grit=.4 brightness=.65
garage rock                                   | rock             | tempo=140 grit=.8 texture=.3
punk, punk rock                               | rock             | tempo=175 energy=.95 grit=.9 harmony=0
pop punk                                      | punk + pop       | tempo=170 minor=.3
post punk, post-punk                          | rock             | tempo=140 minor=.8 brightness=.45 bass=1 space=.5
grunge                                        | rock             | tempo=110 grit=1 minor=.75 brightness=.4
shoegaze                                      | rock + ambient   | tempo=115 energy=.6 grit=.7 space=.95 pads=.9 drums=.8 pattern=rock
dream pop                                     | pop + ambient    | tempo=100 energy=.4 space=.9 pads=.9 drums=.6 pattern=rock
emo, midwest emo                              | rock             | tempo=140 minor=.6 plucks=1 grit=.4
math rock                                     | rock             | tempo=140 plucks=1 grit=.2 harmony=.4 pattern=breakbeat
progressive rock, prog rock, prog             | rock             | tempo=120 keys=.7 lead=.9 harmony=.3 sections=1
psychedelic rock, psychedelic, psych, psych rock | rock          | tempo=110 space=.75 texture=.4 grit=.5
surf rock, surf                               | rock             | tempo=160 space=.6 minor=.3 grit=.3
stoner rock, desert rock                      | rock             | tempo=90 grit=1 brightness=.35
rockabilly, rock and roll, rock n roll        | rock             | tempo=170 swing=.5 acoustic=.7 grit=.2 minor=.2
britpop                                       | rock + pop       | tempo=120
heavy metal                                   | metal            | tempo=140
thrash, thrash metal, speed metal             | metal            | tempo=190 energy=1
death metal, black metal                      | metal            | tempo=200 brightness=.35 minor=1 space=.4
doom metal, doom, sludge                      | metal            | tempo=65 energy=.7 brightness=.25
metalcore, djent, nu metal                    | metal            | tempo=140 pattern=halftime
power metal, symphonic metal                  | metal + orchestral | tempo=170 pattern=rock pads=.8 minor=.7
industrial metal                              | metal + industrial | tempo=130
pop rock                                      | pop + rock       | tempo=120
indie pop, bedroom pop                        | pop              | tempo=110 energy=.5 brightness=.65 grit=.1 texture=.2
hyperpop, bitpop                              | pop + chiptune   | tempo=160 energy=1 grit=.5 brightness=1
power pop, teen pop                           | pop + rock       | tempo=140 minor=.1
art pop, chamber pop, baroque pop             | pop + classical  | tempo=105 pads=.8 acoustic=.8 pattern=rock
ballad, power ballad                          | pop              | tempo=70 energy=.35 keys=.8 pads=.7 minor=.5
singer songwriter, singer-songwriter          | folk             | tempo=95 energy=.35 keys=.5
acoustic rock                                 | rock + folk      | tempo=115 grit=.1 acoustic=1
folk rock                                     | folk + rock      | tempo=120
indie folk, folk pop                          | folk + pop       | tempo=105 energy=.45
country, country music                        | folk             | tempo=110 plucks=1 lead=.7 minor=.15 swing=.15 drums=.8 pattern=rock
bluegrass                                     | country          | tempo=135 energy=.85 drums=.1
americana, alt country                        | country          | tempo=100 energy=.5
western, spaghetti western, cowboy            | country + cinematic | tempo=95 minor=.75 space=.8 lead=.9
baroque                                       | classical        | tempo=100 keys=.9 pads=.7 harmony=.2 fifths=.7
renaissance, medieval                         | classical + folk | tempo=90 plucks=.9 lead=.7 pads=.4 keys=0 harmony=0 prog=modal
romantic era, late romantic                   | classical        | tempo=80 pads=1 harmony=.5 space=.7
classical period                              | classical        | tempo=110
impressionist, impressionism                  | classical        | tempo=70 keys=.9 harmony=.8 space=.7
minimalism, minimalist, minimal music, minimal classical | classical | tempo=110 keys=.9 plucks=.6 harmony=.2 prog=modal
contemporary classical, modern classical, neoclassical, neo classical, post classical | classical | tempo=80 keys=.9 pads=.9 space=.7 minor=.6
chamber music, chamber, ensemble | classical        | tempo=95 pads=.9 lead=.6 space=.45
opera, operatic                               | classical        | tempo=90 lead=1 pads=.9 space=.75 energy=.6
symphony, symphonic, philharmonic             | orchestral       | tempo=100 energy=.6
epic orchestral, epic music, orchestral suite | orchestral + cinematic | tempo=110 energy=.85 drums=.8 prog=epic sections=1
trailer music, trailer, epic trailer          | epic orchestral  | tempo=120 energy=.95 drums=1 grit=.3
score, ost, original soundtrack               | soundtrack       | -
anime, anime opening                          | pop + orchestral | tempo=150 energy=.8 brightness=.8 pattern=rock prog=epic
video game music, vgm, game music             | video game       | -
16-bit, 16 bit, snes                          | chiptune         | tempo=130 chip=.6 pads=.4 space=.3
bitcrushed chiptune, nes, gameboy             | chiptune         | -
space ambient                                 | ambient          | space=1 brightness=.5
healing music, spa music, meditation music    | new age          | tempo=60 energy=.05 space=.9
experimental, avant garde, avant-garde        | idm              | tempo=100 texture=.8 harmony=.6 sections=.9
noise music, harsh noise                      | industrial       | texture=1 grit=1 energy=.9 harmony=0
musique concrete                              | experimental     | drums=.3 texture=1
ebm, electronic body music                    | industrial + techno | tempo=125 grit=.6
darkwave, coldwave, gothic rock, goth         | post punk + synthwave | tempo=125 minor=1 brightness=.3 space=.7
synth punk                                    | punk + synth pop | tempo=160
dungeon synth                                 | dark ambient + medieval | tempo=70 keys=.7 pads=1 drums=0 chip=.2 acoustic=.2
horror synth                                  | darksynth        | tempo=100
horror score, horror                          | dark ambient + cinematic | tempo=80 minor=1 brightness=.15 texture=.6 grit=.2 sections=1

[world]
# genres from around the world
afrobeat                                      | funk             | tempo=112 swing=.2 plucks=.8 lead=.8 acoustic=.7 prog=modal offbeat=.5 fifths=.6
afrobeats, afropop, afro pop, naija           | pop + dub        | tempo=105 energy=.7 minor=.4 pattern=boombap offbeat=.6 swing=.25 prog=pop laidback=.3
afro trap                                     | afrobeats + trap | tempo=120 pattern=halftime
highlife                                      | afrobeat + pop   | tempo=120 minor=.15 plucks=1 prog=pop
juju, soukous, benga                          | highlife         | tempo=130 plucks=1 energy=.8
makossa, mbalax                               | highlife + funk  | tempo=125 drums=1
amapiano, piano house                         | deep house       | tempo=113 bass=1 keys=.9 laidback=.5 prog=jazz harmony=.8 drums=.9
gqom                                          | techno           | tempo=126 minor=.95 brightness=.35 pattern=breakbeat pads=.1
kwaito                                        | house + hip hop  | tempo=108 pattern=four_floor
kuduro, batida                                | techno + afrobeat| tempo=135 energy=.95 pattern=four_floor drums=1
gnawa, tuareg, desert blues, tishoumaren      | blues + afrobeat | tempo=100 minor=.8 plucks=1 prog=modal acoustic=.9
ethio jazz, ethio-jazz, ethiopian jazz, ethiopian | jazz + afrobeat | tempo=105 minor=.85 lead=.9 pattern=rock
rai                                           | pop + afrobeat   | tempo=105 minor=.85 lead=.9
reggaeton, dembow, perreo                     | dancehall-base + pop | tempo=95 energy=.8 minor=.7 pattern=four_floor
bossa, mpb                                    | bossa nova       | -
samba, pagode                                 | bossa nova + funk| tempo=100 energy=.8 drums=1 minor=.2 swing=.2 pattern=rock
batucada                                      | samba            | tempo=110 drums=1 energy=.95 alone drums=1 bass=.3
forro, forró                                  | samba + folk     | tempo=115 lead=.8
baile funk, funk carioca, brazilian funk      | hip hop          | tempo=130 energy=.9 pattern=halftime grit=.4 minor=.5
tango, nuevo tango                            | classical        | tempo=118 minor=.85 drums=0 lead=.9 keys=.7 plucks=.4 energy=.6 prog=pop fifths=.4
flamenco, rumba flamenca, gypsy               | folk             | tempo=125 plucks=1 minor=.9 drums=.4 energy=.7 fifths=.9 acoustic=1 prog=modal
salsa, mambo, timba                           | latin jazz       | tempo=180 energy=.85 keys=.9 lead=.8 drums=1 minor=.6 swing=0 offbeat=.4 prog=pop
son cubano, cuban, afro cuban, afro-cuban| salsa            | tempo=110 energy=.6 plucks=.8
cha cha, cha-cha, chacha, rumba               | salsa            | tempo=120 energy=.6
bolero, latin ballad                          | salsa            | tempo=80 energy=.3 minor=.6 plucks=.8 drums=.4
merengue                                      | salsa            | tempo=150 minor=.3
bachata                                       | latin pop-base   | tempo=128 plucks=1 minor=.6 energy=.55
cumbia, cumbia sonidera, vallenato            | folk             | tempo=95 drums=.8 lead=.8 keys=.3 minor=.3 offbeat=.6 swing=.15 pattern=rock energy=.65
latin, latino, latin music, spanish | salsa + pop      | tempo=110
latin pop                                     | pop + salsa      | tempo=105 pattern=four_floor
moombahton                                    | reggaeton + house| tempo=110
zouk, kizomba, kompa                          | dancehall-base + soul | tempo=92 energy=.5 harmony=.6 laidback=.4
dancehall, ragga                              | dancehall-base   | -
ska, rocksteady                               | reggae + punk    | tempo=155 offbeat=1 minor=.25 lead=.8 grit=.2 pattern=rock
calypso, soca, mento                          | reggae + pop     | tempo=125 minor=.1 plucks=.8 energy=.8 pattern=four_floor brightness=.8
steelpan music, steel band                    | calypso          | plucks=1 keys=.2
mariachi, ranchera, norteño, norteno, tejano, banda | folk       | tempo=130 lead=1 plucks=.9 minor=.25 acoustic=1 drums=.5
polka, oompah                                 | folk             | tempo=125 energy=.8 minor=.1 lead=.8 drums=.8 bass=.9
waltz, viennese waltz                         | classical        | tempo=90 minor=.3 pads=.9 energy=.45
celtic, irish, scottish, celtic folk, irish folk, gaelic | folk  | tempo=115 lead=.9 plucks=.9 minor=.45 swing=.3 fifths=.7 prog=pop
sea shanty, shanty, shanties                  | celtic           | tempo=100 minor=.6 drums=.5 lead=.9
nordic folk, viking, scandinavian             | celtic + cinematic | tempo=90 minor=.85 drums=.8 prog=modal space=.7
balkan, balkan brass, gypsy brass, eastern european, romanian, romania, hungarian, hungary, bulgarian | folk             | tempo=140 lead=1 drums=.9 minor=.8 energy=.9
klezmer                                       | folk             | tempo=130 lead=1 minor=.85 keys=.4 plucks=.4 drums=.5 energy=.75 swing=.2
russian folk, slavic folk                     | folk             | tempo=110 minor=.8 plucks=.9 lead=.6
fado                                          | folk             | tempo=70 minor=.85 plucks=1 drums=0 energy=.3 lead=.8
chanson, french chanson, musette              | folk             | tempo=100 lead=.8 keys=.5 minor=.5 swing=.3
k-pop, kpop, k pop                            | dance pop        | tempo=122 energy=.85 brightness=.85 lead=.9 acoustic=.1 drop=.6 sections=.9
j-pop, jpop, j pop                            | pop              | tempo=135 brightness=.8 keys=.6 energy=.75
j-rock, jrock                                 | rock + anime     | tempo=160
city pop                                      | disco + smooth jazz | tempo=110 keys=.9 harmony=.85 prog=jazz brightness=.7 offbeat=.3 pattern=rock
c-pop, cpop, mandopop, cantopop               | pop              | tempo=100 energy=.5 pads=.7
enka                                          | ballad           | minor=.8 lead=.9
bollywood, filmi, indian pop                  | pop + orchestral | tempo=110 energy=.75 lead=1 drums=.9 pads=.7 acoustic=.6 minor=.5 pattern=rock
bhangra                                       | bollywood        | tempo=165 energy=.95 drums=1
indian classical, raga, hindustani, carnatic  | classical        | tempo=80 plucks=1 drums=.5 pads=.7 lead=.8 keys=0 prog=modal minor=.55 space=.5
indian, india                                 | indian classical + bollywood | -
qawwali, sufi                                 | indian classical | tempo=100 energy=.7 drums=.8 keys=.8 lead=1 minor=.7
ghazal                                        | indian classical | tempo=70 energy=.3 keys=.7 lead=.9
middle eastern, arabic, arabian, egyptian, levantine, maqam | folk | tempo=100 lead=.9 plucks=.9 drums=.8 minor=.85 prog=modal fifths=.6
turkish, arabesque, anatolian                 | middle eastern   | tempo=95
persian, iranian                              | middle eastern   | tempo=85 energy=.45
belly dance                                   | middle eastern   | tempo=110 drums=1 energy=.8
chinese, chinese traditional, guofeng         | folk             | tempo=80 plucks=.9 lead=.8 drums=.2 minor=.3 space=.6 prog=modal fifths=.45
japanese, japanese traditional, japanese instrumental, wafu | chinese | tempo=75 space=.65
gagaku                                        | japanese         | tempo=55 pads=.8 drums=.3 energy=.15 space=.8
korean traditional, gugak                     | chinese          | -
gamelan, balinese, javanese                   | folk             | tempo=90 plucks=1 drums=.4 pads=.2 keys=0 brightness=.7 space=.5 prog=modal minor=.5 acoustic=.9
thai, southeast asian                         | gamelan          | -
hawaiian, polynesian, island                  | folk             | tempo=90 energy=.4 plucks=1 minor=.1 space=.45
aboriginal, didgeridoo music                  | drone            | tempo=90 drums=.4 acoustic=1 texture=.5
tribal, ethnic, world, world music, traditional, folkloric, traditional folk | folk             | tempo=110 drums=1 energy=.65 prog=modal acoustic=.9
african                                       | afrobeat + tribal| -
gregorian, gregorian chant, plainchant, chant | classical        | tempo=60 drums=0 pads=1 keys=0 lead=.5 space=1 energy=.1 prog=modal

[instruments]
# keys
upright piano, acoustic piano                 | piano            | -
felt piano, soft piano, muted piano           | piano            | brightness=.3 energy=.25
honky tonk piano, saloon piano                | piano            | swing=.4 brightness=.65
toy piano                                     | piano + music box| -
pianist, piano solo                           | piano            | -
harpsichord, clavichord                       | keys             | acoustic=.9 brightness=.75
clavinet, clavi                               | keys             | acoustic=.3 brightness=.7 swing=.2
wurlitzer, wurli, e-piano                 | electric piano   | -
fender rhodes                                 | rhodes           | -
hammond, hammond organ, b3                    | organ            | grit=.2
church organ, pipe organ                      | organ            | pads=.9 space=.9 acoustic=1
harmonium, accordion, bandoneon, concertina, melodica | organ    | lead=.7 acoustic=.9
celesta, celeste, glockenspiel, toy bells, chimes, tubular bells, ringing, bell | bells | acoustic=.8
xylophone, metallophone                | marimba          | -
steel drum, steel drums, steel pan, steelpan  | marimba          | brightness=.75
handpan, hang drum, tongue drum               | kalimba          | space=.6
mbira, thumb piano, balafon                   | kalimba          | -
# strings
strings ensemble, string ensemble, string section, orchestral strings | strings | -
lush strings, sweeping strings                | strings          | space=.75
pizzicato, pizzicato strings                  | strings          | plucks=.9 pads=.5
staccato strings                              | strings          | energy=.7
fiddle                                        | violin           | acoustic=.9
viola                                         | violin           | lead=.8 pads=.8
double bass, upright bass, contrabass         | bass             | acoustic=1
violinist, cellist                            | violin           | -
# synths
synthesizer, synthesiser, synths              | synth            | -
analog synth, analogue synth, moog, minimoog, juno, prophet | synth | grit=.2
modular synth, modular, eurorack              | synth            | texture=.4
fm synth, dx7                                 | synth            | brightness=.75 keys=.6
supersaw, supersaws, saw, sawtooth, saw wave, laser, lasers | synth lead       | pads=.8 brightness=.8
wavetable synth, wavetable                    | synth            | brightness=.65
synth strings, string machine                 | synth pad        | -
warm pads, pad synth            | synth pad        | space=.7
mellotron                                     | strings          | texture=.3 acoustic=.6
theremin                                      | lead synth       | space=.7
lead, leads, lead line, lead melody, topline  | -                | lead=1
vocoder, talkbox                              | lead synth       | -
arpeggiator, arpeggiated, arpeggiated synth    | arpeggio         | -
sparkling arpeggios, sparkling                | arpeggio         | brightness=.85
synth stabs, stabs, chord stabs               | synth            | plucks=.8 offbeat=.6
quacking synth stabs                          | synth stabs      | grit=.3 brightness=.7
303, tb-303, tb 303, acid bass, acid bassline, acid line | synth bass | grit=.5 lead=.5
reese bass, reese                             | synth bass       | grit=.7 brightness=.35
wobble bass, wobble, wub                      | synth bass       | grit=.9
slap bass                                     | bass             | acoustic=.6 brightness=.6
bass guitar, electric bass, fretless bass, bassist | bass        | acoustic=.6
log drum, log drums                           | 808              | -
# drums and percussion
drum kit, drumkit, drum set, live drums, drummer, hits, drum hits | drums         | acoustic=.8
brushes, brushed drums, brush drums | drums | pattern=jazz swing=.5 acoustic=1 energy=.35
finger snaps, finger snapping, snaps, snapping, finger snips | percussion | acoustic=1
mallets, mallet percussion | marimba | -
singing bowl, singing bowls, tibetan bowls | bells | space=.9 energy=.1
conch shell, conch, shofar | brass | space=.7
keyboard, keyboards | keys | -
bowed, bowed strings, arco | strings | -
drumming                                      | drums            | -
electronic drums, digital drums, drum machines| drum machine     | -
909, tr-909, tr 909, 707, linn drum, linndrum | drum machine     | -
punchy kick, kick drum, kicks | kick | -
four on the floor, 4 on the floor, four-on-the-floor | kick | pattern=four_floor
snare drum, snares, rimshot, rim shots, rimshots, clap, claps, handclaps, hand claps | snare | -
cymbals, ride cymbal, cymbal, crash cymbal, crashes | hi hats | -
toms, tom fills, drum fills, fills            | drums            | energy=.7
breakbeats, amen break, breaks samples        | drums            | pattern=breakbeat
shaker, shakers, tambourine, cowbell, woodblock, triangle | percussion | brightness=.7
congas, bongos, timbales, cajon, djembe, darbuka, doumbek | percussion | acoustic=1
tabla, dhol, taiko, taiko drums, frame drum   | percussion       | acoustic=1
timpani, kettle drums, orchestral percussion  | percussion       | acoustic=1 space=.7
gong, gongs                                   | percussion       | space=.8
beatbox, beatboxing                           | drums            | acoustic=.7
# guitars and plucked
guitars, guitarist, rhythm guitar             | guitar           | -
clean guitar, clean electric guitar           | electric guitar  | grit=0
distorted guitar, distorted guitars, power chords, guitar riffs, riffs, riff | electric guitar | grit=.9 energy=.8
lead guitar, guitar solo, shredding           | electric guitar  | lead=1 grit=.6
slide guitar, steel guitar, pedal steel, lap steel, dobro | guitar | lead=.7 acoustic=.8
nylon guitar, classical guitar                | acoustic guitar  | -
twelve string guitar, 12 string guitar, jangly guitars, jangly guitar, strummed guitar, strumming, strummed | acoustic guitar | brightness=.7
fingerpicking, fingerpicked, finger picking   | acoustic guitar  | energy=.35
ukulele, uke, banjo, mandolin, bouzouki, balalaika, charango | acoustic guitar | brightness=.75
concert harp                                  | harp             | -
celtic harp, irish harp                       | harp + celtic    | plucks=1 acoustic=1
lute, oud, saz, baglama                       | acoustic guitar  | minor=.7
sitar, sarod, veena                           | acoustic guitar  | minor=.55 space=.5 prog=modal
koto, guzheng, pipa, shamisen, zither, gayageum | harp           | minor=.35
kora, ngoni                                   | harp             | -
spanish guitar, flamenco guitar               | acoustic guitar + flamenco | plucks=1 acoustic=1
# winds and brass
flutes, piccolo, pan flute, pan pipes, panpipes, recorder, tin whistle, whistle, penny whistle | flute | -
shakuhachi, bansuri, ney, dizi, xiao          | flute            | space=.7 minor=.5
duduk, erhu, oboe, english horn, cor anglais  | flute            | minor=.7
clarinet, bass clarinet, bassoon              | flute            | acoustic=.9
alto sax, tenor sax, alto saxophone, tenor saxophone, soprano sax, baritone sax | saxophone | -
trumpets, flugelhorn, cornet, muted trumpet   | trumpet          | -
trombone, tuba, french horn, horn section, brass section, fanfare horns | brass | -
bagpipes, bagpipe, uilleann pipes             | flute            | grit=.2 pads=.5
harmonica, blues harp                         | flute            | acoustic=.8 grit=.2
didgeridoo                                    | drone            | acoustic=1 texture=.4
# voices (the synth has no singer: a voice carries the lead line)
vocals, vocal, voice, voices, singer, singers, singing, sung, vocalist, sing, sings, duet, talking, speech | - | lead=.8 acoustic=.6
female vocals, female vocal, female voice, female singer | vocals | brightness=.6
male vocals, male vocal, male voice, male singer | vocals        | brightness=.45
vocal harmony, vocal harmonies, harmonies, backing vocals, backup vocals, backup singers, harmonizing, harmonized | vocals | pads=.7 harmony=.5
humming, whistling, vocal chops, vocal samples | vocals          | -
choirs, choral, chanting, monks       | choir            | -
opera singer, soprano, tenor                  | vocals           | acoustic=1 space=.7
rapping, rapper, rappers, mc, spoken word     | vocals           | pattern=boombap
# orchestra
orchestra, full orchestra, symphony orchestra, chamber orchestra, orchestrated, orchestration | orchestral | -
string quartets, quartet                      | string quartet   | -

[moods]
# calm and soft
calming, soothing, tranquil, restful, placid | calm      | -
gentle, soft, tender, delicate, quiet, hushed, light, lightly | calm             | brightness=.45 energy=.25
mellow, smooth, laid back, laid-back, laidback, easygoing, easy going, easy listening | chill | laidback=.5
lazy, sleepy, drowsy, slow motion             | relaxed          | tempo=72 energy=.15 laidback=.8
dreamlike, dreaming, hazy, floaty, floating, weightless, otherworldly | dreamy | -
peaceful mood, serenity, zen, blissful        | peaceful         | -
contemplative, reflective, introspective, pensive, thoughtful, wistful | melancholic | energy=.25 minor=.6
# dark and tense
brooding, moody, noir, shadowy                | dark             | energy=.4
sinister, menacing, threatening, evil, malevolent | ominous      | grit=.3
haunting, haunted, ghostly, spectral, phantom | eerie            | -
grim, bleak, desolate, dismal, dreary, bleak mood | gloomy       | -
unsettling, uneasy, disturbing, nervous, anxious | tense         | -
suspense, tension, thriller, foreboding, dread | suspenseful     | -
horrifying, terrifying, frightening, nightmarish, creepy crawly | scary | -
# sad
sorrowful, mournful, grieving, heartbroken, heartbreaking, tragic, lament | sad | tempo=70 energy=.2
emotional, moving, poignant, touching, heartfelt, sentimental | melancholic | energy=.45
lonely, lonesome, isolated, alone         | melancholic          | energy=.2 space=.75
longing, yearning                             | romantic         | minor=.6
# happy and bright
upbeat, up-beat, feel good, feel-good, positive, optimistic | happy | energy=.75 tempo=124
bright mood, sunny, summery, cheery, jolly, merry, carefree | cheerful | -
fun, lighthearted, light hearted, whimsical, quirky, silly, goofy, bouncy, bubbly | playful | -
hopeful mood, inspiring, inspirational, motivational, motivating | uplifting | -
triumph, victorious, glorious, celebratory, festive | triumphant | -
sweet, cute, kawaii, innocent, adorable, beautiful, pretty, lovely | playful          | brightness=.85 energy=.5
love, loving, sensual, intimate, passionate, seductive, sexy | romantic | -
# energy
lively, vibrant, spirited, exciting, thrilling, hype, hyped, pumped, vigorous, enthusiastic | energetic | -
driving, propulsive, relentless, pounding, pumping, punchy, powerful, forceful | energetic | grit=.3 energy=.85
fierce, furious, violent, rage, raging, brutal, savage, chaotic, screaming, screams, screamed, growly, growling | angry | -
aggressive sound, hard hitting, hard-hitting, hard | aggressive  | -
urgent, hurried, rushing, breakneck, manic | frantic          | -
bold, confident, proud, swaggering, swagger   | heroic           | energy=.7 minor=.4
grand, grandiose, monumental, sweeping, cinematic feel, larger than life, colossal, huge, massive | majestic | energy=.75
dramatic, intense mood, climactic, powerful emotions | epic      | -
mystical, magical, enchanted, fairy tale, fairytale, fantasy, whimsy | mysterious | brightness=.55 minor=.5 space=.8
spiritual, sacred, holy, divine, transcendent, heavenly, celestial, angelic | ethereal | -
cosy, warm mood, comforting, homely, snug    | cozy              | -
wistful nostalgia, reminiscent, retro feel, bittersweet | nostalgic | -
trippy, psychedelic feel, hallucinatory, surreal, dizzy | hypnotic | space=.8
trance-like, trancelike, repetitive, mesmerizing, mesmerising | hypnotic | -
ambitious, determined, focused, concentration | energetic        | energy=.6 tempo=118
serious, solemn, stately, reverent, ceremonial| somber           | energy=.35 minor=.6
cool, slick, stylish, sleek, classy, sophisticated, elegant | chill | harmony=.6 brightness=.55
jazzy feel, soulful                           | nostalgic        | harmony=.75 swing=.3
groovy mood, funky feel, catchy, danceable    | groovy           | -
weird, strange, bizarre, odd, alien, glitchy mood | mysterious  | harmony=.7
angst, angsty, rebellious, defiant            | angry            | energy=.8
calm down, chill out                          | chill            | -
tired, exhausted, weary                       | sad              | energy=.15 tempo=70

[textures]
# space and reverb
reverberant, reverby, reverb drenched, drenched in reverb, echoing, echoes, echo, delay, dub delay | reverb | -
wide, stereo, expansive, vast, open           | spacious         | -
intimate sound, close, close mic, up close, dry mix | dry        | -
roomy, room, live room                        | spacious         | space=.55
cathedral reverb, hall reverb, huge reverb    | cavernous        | -
# tone
punchy mix, crisp, clear, polished, glossy, pristine, hi-fi, hifi, high fidelity, modern production, snappy, sharp | bright | grit=0 texture=0
dark mix, murky, muddy, dull, low end, boomy, bassy, subby, sub heavy | muffled | -
shimmering, shimmer, metallic, sparkly, glittery, glitter, twinkling, glistening, bell-like | bright | space=.7
lo fi sound, lo-fi sound, low quality, low fidelity, poor quality, amateur recording, amateur, mono, home recording, tinny, radio | tape | texture=.6 brightness=.3
raw, rough, dirty, grimy, filthy, nasty, crunchy guitars | gritty | -
overdriven, overdrive, fuzz, fuzzy, fuzzed, bitcrushed, bitcrush, crushed, clipping, feedback | distorted | -
saturation, tape saturation, warmth, warm sound, tube, valve | saturated | brightness=.4
analogue, vintage synth, vintage gear        | analog             | -
digital, synthetic, electronic sound, artificial | analog         | grit=0 acoustic=0
organic, natural, live instruments, live band, unplugged, live, live performance, live recording, crowd, audience, jam, wooden | acoustic | texture=.2
filtered, low pass, lowpass, filter sweep, sweeping filter | muffled | space=.5
sidechain, sidechained, sidechain compression, pumping sidechain, pumping compression | - | pattern=four_floor energy=.7 drop=.8
compressed, loud, loudness, wall of sound     | dense              | grit=.3
glitch effects, glitches, stutter, stutters, chopped, chopped and screwed, glitchy sound | glitchy | -
granular, textures, textural, texture, sound effects, effects, sfx, siren, sirens | noise              | texture=.8 grit=0
tape hiss, hiss, static, radio static, white noise | noise        | -
vinyl noise, vinyl scratch, record crackle, turntable, scratching, scratches | vinyl | -
field recording, ambience, nature sounds, birdsong, birds, crickets, waves, ocean waves, water, stream, river, thunder, thunderstorm | field recordings | -
drones, droning, sustained, sustained notes, long notes, swells, swelling | - | pads=1 energy=.15 space=.7
# density and pace
sparse arrangement, sparse mix, stripped back, stripped-back, stripped down, bare, barebones, simple, minimal arrangement | sparse | -
busy, layered, full, rich, thick, complex, intricate | dense     | harmony=.5
intro, introduction, opening, prelude, overture | - | sections=.8 energy=.4
slow tempo, slow-paced, slow paced, slowly, largo, adagio, slower | slow | -
medium tempo, mid tempo, mid-tempo, midtempo, moderate tempo, moderate, medium, medium paced, andante | - | tempo=105 energy=.5
fast tempo, fast-paced, fast paced, uptempo, up tempo, up-tempo, quick, rapid, allegro, presto, faster, speedy | fast | -
half time, halftime, half-time                | -                | pattern=halftime
double time, double-time                      | fast             | -
steady, steady beat, steady rhythm, constant, repetitive groove, groove, grooves, grooving | groovy | sections=.3 drums=.8 bass=.8
syncopated, syncopation, off beat, offbeat, off-beat, skank | - | offbeat=1 swing=.2
staccato, staccato rhythms, choppy, stabby    | -                | energy=.65 plucks=.8
legato, flowing, fluid, smooth lines          | -                | pads=.8 energy=.35
swinging, shuffling, shuffled, triplet feel, triplets | swung     | -
straight, quantized, on grid, robotic, mechanical | - | swing=0 laidback=0 acoustic=0
behind the beat, drunk, drunken, wonky, sloppy, laid back groove | -               | laidback=.9 swing=.4
build up, buildup, build-up, building, rising, crescendo, builds | - | drop=1 sections=1 energy=.75
drop, the drop, bass drop, beat drop         | -                 | drop=1 sections=1 energy=.9 bass=1
breakdown                                     | -                | drop=1 sections=1 energy=.4
background, background music, bgm, unobtrusive, subtle | - | sections=.2 energy=.3 lead=.2
loopable, seamless loop, looping, seamless    | -                | sections=.2
evolving, progressive build, developing, dynamic | -             | sections=1
melody, melodies, melodic              | -                 | lead=.8
chords, chord progression, chord progressions, progression | - | keys=.6 pads=.7
jazzy chords, seventh chords, 7th chords, ninth chords, extended chords, lush chords | - | harmony=.9 prog=jazz
rhythm, rhythmic, percussive, beats heavy, drum heavy | -      | drums=1
bass heavy, bass-heavy, heavy bass, deep bass, booming bass, thumping bass | sub bass | bass=1
instrumental only, no vocals, no voice, without vocals, instrumental, instrumental version | -     | lead=.5
minor key, minor scale, minor chords, in minor, minor, minor mode, aeolian | - | minor=1
major key, major scale, major chords, in major, major, major mode, ionian, lydian | - | minor=0
locrian                                       | -                | minor=1 harmony=.8 brightness=.35
distant, far away, faraway, remote, faint    | -                | space=.85 brightness=.4 energy=.3
dorian, mixolydian, modal                     | -                | minor=.5 prog=modal
pentatonic, pentatonic scale                  | -                | minor=.35 prog=modal
phrygian, harmonic minor                      | -                | minor=1 fifths=.9
dissonant, dissonance, atonal, clusters       | -                | harmony=1 minor=.9 brightness=.4
consonant, simple chords, triads | -                | harmony=0
quiet mix, soft dynamics, pianissimo          | gentle           | -

[eras]
# decades: the production and instruments of their time
50s, 1950s, fifties, doo wop era              | -                | swing=.5 acoustic=.85 grit=.1 texture=.3 space=.45 harmony=.4 prog=pop
60s, 1960s, sixties                           | -                | acoustic=.8 texture=.3 grit=.2 space=.4 prog=pop
70s, 1970s, seventies                         | -                | acoustic=.6 keys=.7 bass=.9 swing=.15 harmony=.55 texture=.2 brightness=.5
80s, 1980s, eighties                          | -                | acoustic=.05 pads=.85 lead=.7 space=.7 brightness=.65 chip=.1 pattern=rock
90s, 1990s, nineties                          | -                | acoustic=.3 drums=.95 grit=.3 texture=.2
2000s, 00s, noughties, y2k                    | -                | acoustic=.2 brightness=.7 grit=.2
2010s, 10s                                    | -                | acoustic=.1 brightness=.75 drop=.8
2020s, modern, contemporary   | -                | acoustic=.2 brightness=.7 texture=.05
retro, old school, oldschool, throwback, vintage, classic, old fashioned, old-fashioned, old timey | - | texture=.4 grit=.2 brightness=.4
futuristic, future, sci fi, sci-fi, scifi, space age, next gen | - | acoustic=0 brightness=.7 space=.7 chip=.1
ancient, primal, prehistoric, timeless        | -                | acoustic=1 drums=.6 prog=modal space=.7
victorian, edwardian, roaring twenties, 1920s, twenties, 20s, 1930s, 30s, 1940s, 40s | - | acoustic=1 swing=.6 texture=.5 harmony=.5 pattern=jazz
y2k pop, millennial                           | pop              | brightness=.8

[scenes]
# places and scenes
jazz cafe, jazz club, jazz bar, speakeasy     | jazz             | energy=.35 space=.4 tempo=105 texture=.2
coffee shop, coffeeshop, cafe, café, coffeehouse, bistro | chill + jazz | energy=.3 acoustic=.9 keys=.8 drums=.5 pattern=jazz
lounge bar, hotel lobby, cocktail bar, cocktail, martini | lounge | -
rainy night, rainy day, rainy, raining, rainfall, drizzle, rain on window | rain + melancholic | tempo=80 energy=.25 minor=.7 brightness=.3
night, nighttime, night time, late night, midnight, after hours, 3am, 2am | - | brightness=.35 energy=.4 space=.6 minor=.6
nocturnal, moonlight, moonlit, full moon, moon, starry night, stars, starlight | night | space=.75
neon city, neon, neon lights, cyberpunk, cyber, blade runner, night drive, night city, dystopian, dystopia | synthwave | minor=.8 brightness=.5 space=.7
city, urban, downtown, streets, street, metropolis, bustling city | - | energy=.6 acoustic=.3 drums=.8
rooftop, skyline, penthouse                   | city             | energy=.45 harmony=.6
nightclub, club, rave, warehouse party, dancefloor, dance floor, festival, party, party music, dj, dj set, remix | - | tempo=124 energy=.8 drums=.95 bass=.9 brightness=.6 space=.45 drop=.8 acoustic=.2
forest, woods, woodland, jungle trek, grove   | -                | acoustic=.9 texture=.5 space=.7 energy=.3 plucks=.6 lead=.5 drums=.3 minor=.45
enchanted forest, fairy forest, magic forest  | forest + mysterious | brightness=.6 plucks=.8
cursed forest, dark forest, haunted forest    | forest + ominous | -
space station, spaceship, starship, space ship, spacecraft, orbit, satellite | - | acoustic=0 space=.9 pads=.9 brightness=.55 energy=.35 texture=.4 tempo=90
outer space, space, cosmos, cosmic, galaxy, galactic, nebula, interstellar, universe, astral | - | acoustic=0 space=1 pads=1 energy=.25 brightness=.55 drums=.2 tempo=80
space bass                                    | outer space + dubstep | -
underwater, ocean, sea, deep sea, aquatic, beach, seaside, shore, coast, island breeze | - | space=.85 texture=.5 brightness=.45 energy=.3 pads=.8 tempo=85
tropical, tropics, paradise, lagoon           | beach + tropical house | -
desert, dunes, sahara, wasteland, badlands    | -                | minor=.8 space=.85 plucks=.7 energy=.35 fifths=.8 prog=modal
mountain, mountains, peaks, alpine, highlands, valley, meadow, fields, countryside, prairie, pastoral, nature | - | acoustic=.9 space=.75 energy=.35 minor=.3 pads=.7
village, town, hometown, farm, farmland, market, bazaar | -       | acoustic=.9 energy=.5 minor=.25 plucks=.8 drums=.5
tavern, inn, pub, saloon, medieval tavern     | celtic           | energy=.7 drums=.6
castle, kingdom, throne room, royal court, palace | orchestral | minor=.5 space=.8
dungeon, crypt, catacombs, tomb, cave, cavern, caves, underground, sewer | - | minor=.95 brightness=.2 space=.9 energy=.3 texture=.5 drums=.3
church, cathedral, chapel, temple, monastery, shrine | - | pads=1 space=.95 acoustic=.9 energy=.2 drums=.1 prog=modal
haunted house, haunted mansion, graveyard, cemetery, graveyard shift | horror score | -
halloween, halloween party, pumpkin patch, pumpkin, witch, witches, witchy, witchcraft, witch's brew, brew | spooky | drums=.6 minor=.9 plucks=.6 energy=.5
zombie, zombies, zombie apocalypse, apocalypse, post apocalyptic, undead | horror score | energy=.6 grit=.5
vampire, vampires, vampire ball, gothic, gothic horror, dracula | horror score + waltz | -
werewolf, werewolf howl, howl, wolves, wolf, beast | horror score | drums=.6 energy=.6
ghost, ghosts, ghostly whispers, whispers, spirits, poltergeist | eerie | texture=.6
demon, demons, demonic, demonic chant, hell, infernal, satanic, occult, ritual, dark ritual | dark ambient | grit=.6 drums=.6 energy=.5
blood, bloody, blood moon, slasher, slasher film, gore, murder | horror score | energy=.55
christmas, xmas, holiday, holidays, winter wonderland, sleigh bells, jingle bells, festive season | - | minor=.05 brightness=.8 plucks=.8 acoustic=.8 energy=.55 fifths=.6 prog=pop
winter, snow, snowy, frozen, ice, icy, cold, frost, blizzard | - | brightness=.6 space=.85 energy=.3 minor=.6 pads=.8
summer, summertime, hot, heat, sunshine, sunny day | -         | brightness=.8 energy=.65 minor=.15
autumn, fall, autumn leaves, harvest          | -                | brightness=.4 energy=.35 minor=.6 acoustic=.8
spring, springtime, blossom, bloom, flowers, garden, sakura | - | brightness=.7 energy=.45 minor=.15 acoustic=.8 plucks=.7
sunrise, dawn, morning, sunrise mood, daybreak, wake up | -     | brightness=.7 energy=.45 minor=.25 space=.6
sunset, dusk, twilight, golden hour, evening  | -                | brightness=.45 energy=.35 minor=.45 space=.65 harmony=.6
road trip, highway, driving at night, drive, car, cruising, cruise | - | energy=.65 tempo=115 drums=.9 bass=.9
train, railway, journey, voyage, travel, traveling, travelling, wandering, on the road | - | energy=.5 tempo=105
airport, mall, elevator, waiting room, lobby music, muzak, hold music, corporate | lounge | energy=.35 grit=0 texture=0
jingle, advertisement, commercial, advert | pop | energy=.7 brightness=.85 minor=.1 sections=.3
office, workplace, productivity | -                 | energy=.4 sections=.2 texture=.1
study, studying, focus, homework, library, reading | lofi        | energy=.3 sections=.2
sleep, sleeping, bedtime, lullaby, lullabies, nap, cradle | -   | tempo=60 energy=.05 drums=0 brightness=.3 space=.7 minor=.3 plucks=.6
meditation, meditate, yoga, mindfulness, breathing, relaxation, healing, spa, massage, wellness | new age | -
workout, gym, running, cardio, training montage, fitness, sport, sports, exercise | - | tempo=130 energy=.9 drums=1 bass=1
wedding, ceremony, graduation, celebration    | -                | minor=.1 brightness=.75 energy=.6 pads=.8 acoustic=.8
funeral, memorial, requiem, mourning, elegy   | -                | minor=1 tempo=60 energy=.1 brightness=.25 pads=1 drums=0
carnival, circus, fairground, funfair, amusement park, parade, fiesta | - | minor=.15 brightness=.8 energy=.8 lead=.8 swing=.3 tempo=130
kitchen, cooking, dinner, dinner party, brunch, picnic | chill   | brightness=.6 minor=.3
sunset beach, beach party, pool party         | tropical house   | -
romance, date night, candlelight, candlelit   | romantic         | -
war, battlefield, army, military, march, marching, soldiers, march music | - | drums=1 energy=.8 minor=.7 lead=.8 acoustic=.9 pattern=rock prog=epic
heaven, clouds, sky, flying, flight, floating in space | ethereal | pads=1
storm, stormy, tempest, hurricane, chaos      | -                | energy=.85 minor=.9 texture=.7 drums=.9 grit=.4
fire, campfire, bonfire, fireplace, hearth    | -                | acoustic=1 texture=.5 plucks=.8 energy=.3 minor=.3
sci-fi lab, laboratory, computer, robots, robot, machine, machines, cyborg, android | - | acoustic=0 chip=.3 energy=.55 texture=.4
hacker, hacking, matrix, code, coding, programming | cyberpunk   | energy=.6 sections=.3
detective, spy, secret agent, heist, crime, mafia, gangster | noir jazz | energy=.5
pirate, pirates, high seas, sailing, ship    | sea shanty       | -
samurai, ninja, dojo, zen garden, feudal japan| japanese         | -
wild west, frontier, ranch                    | western          | -
arcade, pinball, retro arcade                 | chiptune         | -

[game]
# game uses
boss battle, boss fight, final boss, boss theme, boss, raid boss, showdown | - | tempo=160 energy=.95 minor=.95 drums=1 bass=1 lead=.8 grit=.5 brightness=.6 pads=.7 prog=epic sections=.9 drop=.8
battle, battle theme, combat, fight, fighting, fight scene, action, action scene, skirmish, duel, war drums | - | tempo=150 energy=.9 minor=.85 drums=1 bass=.9 grit=.4 prog=epic
menu, main menu, title screen, title theme, start screen, pause menu, pause screen, options menu | - | tempo=95 energy=.3 sections=.2 drums=.4 pads=.8 space=.6 minor=.4
stealth, sneaking, sneak, infiltration, covert, undercover, hide and seek, spy mission | - | tempo=95 energy=.35 minor=.9 brightness=.3 drums=.5 bass=.8 pads=.6 lead=.1 space=.5 sections=.3 prog=modal
mission, mission briefing, objective, operation | -             | energy=.6 minor=.7 drums=.8 tempo=115
stealth mission                               | stealth          | -
victory, win, winning, level complete, level clear, stage clear, quest complete, success, reward, achievement, fanfare | - | tempo=120 energy=.8 minor=0 brightness=.9 lead=1 drums=.8 pads=.8 sections=.3 prog=pop
game over, defeat, death, you died, you lose, failure, lose, losing | - | tempo=70 energy=.2 minor=1 brightness=.25 drums=.1 pads=.9 sections=.2
exploration, explore, exploring, overworld, open world, adventure, adventuring, wandering around, discovery | - | tempo=100 energy=.45 minor=.35 pads=.8 plucks=.6 space=.7 acoustic=.6 prog=epic
puzzle, puzzles, puzzle game, thinking, brain teaser, riddle, match three | - | tempo=100 energy=.35 minor=.35 plucks=.8 keys=.6 drums=.4 sections=.2 brightness=.6 space=.4
chase, chase scene, pursuit, escape, running away, on the run, getaway, fleeing | - | tempo=165 energy=1 minor=.8 drums=1 bass=1 pattern=breakbeat grit=.3
racing, race, race track, racer, speed, kart | -                 | tempo=150 energy=.95 drums=1 bass=.9 pattern=four_floor acoustic=0
level, stage, level one, world one, platformer, platforming, side scroller, jump and run | video game | tempo=140 energy=.7
rpg, jrpg, role playing, role-playing, quest, questing | orchestral | energy=.55 prog=epic plucks=.5
town theme, village theme, shop, shop theme, item shop, merchant, inn theme, safe room, save room, hub, hub world | - | tempo=100 energy=.35 minor=.2 plucks=.8 acoustic=.8 drums=.3 sections=.2 brightness=.65
dungeon crawl, dungeon theme, dungeon crawler, labyrinth, maze | dungeon | drums=.5 energy=.45
cutscene, cut scene, cinematic scene, story, storytelling, narrative | cinematic | sections=.8
credits, end credits, ending, ending theme, finale, epilogue | - | tempo=90 energy=.45 minor=.3 pads=.9 sections=.8 prog=epic
loading screen, loading, waiting         | background           | -
tutorial, training, practice, warm up, warmup | -              | tempo=105 energy=.4 minor=.2 sections=.2
horror game, survival horror, jump scare, jumpscare | horror score | -
tension rising, danger, threat, alert, alarm, under attack, ambush, invasion | - | energy=.8 minor=.95 tempo=140 drums=.9 grit=.3
calm before the storm, aftermath, safe zone, resting, rest | -   | energy=.2 minor=.5 drums=.1 pads=.9
sports game, tournament, championship, arena, stadium | -       | tempo=128 energy=.9 drums=1 brightness=.8 minor=.3
fighting game, beat em up, beat 'em up, brawler | battle        | tempo=155
shooter, fps, first person shooter, gunfight, firefight | battle | grit=.6 tempo=140
strategy, tactics, strategy game, city builder, management, simulation | - | tempo=100 energy=.45 sections=.3 pads=.7 plucks=.6
character select, character selection, lobby, matchmaking | - | tempo=120 energy=.6 drums=.8 sections=.2
epic boss, epic battle                        | boss battle + epic | -
cozy game, farming game, life sim, cottagecore | cozy           | acoustic=.9 plucks=.8 minor=.15
retro game, retro gaming, 8 bit game, pixel, pixel art | chiptune | -
mobile game, casual game, idle game           | -                | tempo=120 energy=.6 brightness=.85 minor=.1 plucks=.8 chip=.3
""".strip("\n")

#: Extra base points used only as bases in the tables above (never entries themselves, never listed).
HIDDEN_BASES = r"""
dancehall-base                                | reggae           | tempo=95 energy=.7 pattern=halftime bass=1 drums=1 minor=.6 offbeat=.6 acoustic=.2 prog=modal
latin pop-base                                | pop + bossa nova | tempo=110 pattern=rock
""".strip("\n")
